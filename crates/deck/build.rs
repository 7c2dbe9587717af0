//! Makes sure a release `deck` embeds a built web client: when debug
//! assertions are off (rust-embed then compiles `web/dist` into the binary),
//! builds it with `npm ci` and `npm run build` if `web/dist` is missing, and
//! fails with the commands to run when that does not work.
//! Debug builds read `web/dist` at run time and need nothing here.

use std::path::Path;
use std::process::Command;

fn main() {
    let web = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../web");
    let dist = web.join("dist");
    // A rebuilt client is compiled in again.
    println!("cargo:rerun-if-changed={}", dist.display());
    println!("cargo:rerun-if-env-changed=DECK_SKIP_WEB_BUILD");
    let embeds = std::env::var_os("CARGO_CFG_DEBUG_ASSERTIONS").is_none();
    if !embeds || dist.join("index.html").exists() {
        return;
    }
    if std::env::var_os("DECK_SKIP_WEB_BUILD").is_some() {
        println!("cargo:warning=DECK_SKIP_WEB_BUILD is set: this deck embeds no web client and serves the API only");
        return;
    }
    if !web.join("node_modules").exists() {
        // The client's packages, pinned by package-lock.json, from the npm registry.
        let installed = Command::new("npm").args(["ci", "--no-audit", "--no-fund"]).current_dir(&web).status();
        if !installed.is_ok_and(|status| status.success()) {
            panic!(
                "a release deck embeds the web client, and {} is not built (and `npm ci` failed).\n\
                 Build it first: `cd web && npm ci && npm run build` (Node.js 20+), then build deck again.\n\
                 (Or set DECK_SKIP_WEB_BUILD=1 for a binary that serves the API only.)",
                dist.display()
            );
        }
    }
    let status = Command::new("npm").args(["run", "build"]).current_dir(&web).status();
    match status {
        Ok(status) if status.success() && dist.join("index.html").exists() => {}
        Ok(status) => panic!("`npm run build` in {} failed ({status}); run it by hand to see why", web.display()),
        Err(error) => panic!("could not run `npm run build` in {} ({error}); is Node.js installed?", web.display()),
    }
}
