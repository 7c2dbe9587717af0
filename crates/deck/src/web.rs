//! The built web client, compiled into the binary so that `deck serve`
//! started from any directory serves the page. A release build embeds
//! `web/dist` (its `build.rs` builds the client first, or fails saying how);
//! a debug build reads the same folder from disk at run time (rust-embed's
//! default), so that debug builds and lints need no built client.

use std::borrow::Cow;
use std::sync::Arc;

#[derive(rust_embed::RustEmbed)]
#[folder = "../../web/dist/"]
#[allow_missing = true]
struct Dist;

/// The embedded client as the gateway serves it.
#[derive(Debug)]
struct EmbeddedClient;

impl gateway::WebAssets for EmbeddedClient {
    fn get(&self, path: &str) -> Option<Cow<'static, [u8]>> {
        Dist::get(path).map(|file| file.data)
    }
}

/// The compiled-in client, or `None` when this binary holds none (a debug
/// build whose `web/dist` is not built).
pub fn assets() -> Option<Arc<dyn gateway::WebAssets>> {
    Dist::get("index.html").is_some().then(|| Arc::new(EmbeddedClient) as Arc<dyn gateway::WebAssets>)
}
