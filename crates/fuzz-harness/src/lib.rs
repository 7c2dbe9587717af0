//! What each fuzz target checks. Every function takes outside bytes (or a
//! structure built from them), runs one parser or one seam, and panics only
//! when an invariant breaks: a crash is a bug, an `Err` is a refusal.
//!
//! `fuzz/fuzz_targets/*.rs` (cargo-fuzz, libFuzzer, nightly) are one line
//! each around these; `tests/corpus.rs` replays the committed corpora and
//! the regression inputs through the same functions on stable Rust, and
//! `tests/properties.rs` drives [`post_roundtrip`] with proptest.

use std::sync::OnceLock;

use chrono::{DateTime, TimeZone, Utc};
use model::{Author, Kind, Post, PostBundle, PostEvent, Source, StoredPost};
use search::{Doc, Query};
use store::{EmbeddedStore, PostStore, Range, WriteBatch};

/// The receive time every ingest target uses, so runs are reproducible.
pub fn received() -> DateTime<Utc> {
    Utc.timestamp_opt(1_780_000_000, 0).single().unwrap_or_default()
}

fn text_of(data: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(data)
}

/// A few posts every query target matches against: English and Korean,
/// a retweet with its original, entities of every kind.
fn sample_posts() -> &'static [StoredPost] {
    static SAMPLES: OnceLock<Vec<StoredPost>> = OnceLock::new();
    SAMPLES.get_or_init(|| {
        let mut posts = Vec::new();
        let texts = [
            ("1", "BTS 방탄소년단 새 앨범 #BTS #방탄소년단 @bts_bighit $HYBE https://example.com/a", "ko"),
            ("2", "Brexit vote today #brexit @UKParliament", "en"),
            ("3", "아이유 콘서트 너무 좋았어요 #아이유 #IU", "ko"),
            ("4", "", "und"),
        ];
        for (id, text, lang) in texts {
            let mut post = base_post(id, text);
            post.lang = Some(lang.to_owned());
            ingest::fuzzing::fill_entities(&mut post);
            posts.push(StoredPost { post, retweeted: None, quoted: None });
        }
        let original = posts[0].post.clone();
        let mut retweet = base_post("5", "RT @bts_bighit: BTS 방탄소년단");
        retweet.kind = Kind::Retweet;
        retweet.retweeted_id = Some(original.id.clone());
        posts.push(StoredPost { post: retweet, retweeted: Some(Box::new(original)), quoted: None });
        posts
    })
}

fn base_post(id: &str, text: &str) -> Post {
    Post::new(
        id.to_owned(),
        Source::X,
        Author { id: format!("9{id}"), handle: format!("user{id}"), name: format!("User {id}"), avatar_url: None },
        text.to_owned(),
        received(),
    )
}

/// The percolator, the term conjunction and the matcher agree on `doc`.
fn check_agreement(query: &Query, doc: &Doc) {
    let matched = query.matches_doc(doc);
    let mut percolator = feed::Percolator::default();
    percolator.insert(1, query.clone());
    let percolated = percolator.matches(doc).contains(&1);
    assert_eq!(percolated, matched, "percolator and matcher disagree on {:?}", query.text());
    let mut terms = doc.terms();
    terms.sort();
    // The plan (what the store scans) is a superset of the matches.
    assert!(!matched || query.plan().admits(&terms), "the plan misses a match of {:?}", query.text());
    if let Some(conjunction) = query.term_conjunction() {
        let has = |term: &search::Term| terms.binary_search(term).is_ok();
        let admitted = conjunction.required.iter().all(has) && !conjunction.forbidden.iter().any(has);
        assert_eq!(admitted, matched, "term conjunction and matcher disagree on {:?}", query.text());
    }
}

/// The query language: parse, plan, and match against sample posts, where
/// the percolator and the term conjunction must agree with the matcher. A
/// refusal must point inside the text.
pub fn query(data: &[u8]) {
    let text = text_of(data);
    match Query::parse(&text) {
        Ok(query) => {
            let _ = query.plan();
            for stored in sample_posts() {
                check_agreement(&query, &Doc::new(stored));
            }
        }
        Err(error) => {
            assert!(error.position <= text.chars().count(), "{error} past the end of {} chars", text.chars().count());
        }
    }
}

/// One record of any source (X v2 and v1.1, Jetstream, Mastodon), through
/// the parser and the normalization boundary. What comes out must respect
/// the boundary's documented limits.
pub fn ingest(data: &[u8]) {
    let text = text_of(data);
    let mut parser = ingest::Parser::new();
    let Ok(events) = parser.parse_payload_at(&text, received()) else { return };
    for event in &events {
        match event {
            PostEvent::Delete { id } => assert!(id.len() <= ingest::normalize::limits::ANY_ID_BYTES),
            PostEvent::Upsert(bundle) => check_bundle(bundle),
        }
    }
}

fn check_bundle(bundle: &PostBundle) {
    use ingest::normalize::limits;
    for post in std::iter::once(&bundle.post).chain(bundle.retweeted.as_deref()).chain(bundle.quoted.as_deref()) {
        assert!(post.created_at <= received(), "post {} sorts after it arrived", post.id);
        assert!(post.id.len() <= model::MAX_ID_BYTES);
        assert!(post.text.len() <= limits::X_TEXT_BYTES);
        // A handle that cannot be kept falls back to the author id (bounded by its own limit).
        assert!(
            post.author.handle.len() <= limits::HANDLE_BYTES
                || (post.author.handle == post.author.id && post.author.id.len() <= limits::AUTHOR_ID_BYTES),
            "handle of {} bytes",
            post.author.handle.len()
        );
        assert!(post.author.name.len() <= limits::NAME_BYTES);
        assert!(post.lang.as_deref().is_none_or(|lang| lang.len() <= limits::LANG_BYTES));
        for (values, max) in [
            (&post.hashtags, limits::HASHTAG_BYTES),
            (&post.mentions, limits::HANDLE_BYTES),
            (&post.urls, limits::URL_BYTES),
            (&post.cashtags, limits::CASHTAG_BYTES),
        ] {
            assert!(values.len() <= limits::ENTITIES_PER_KIND);
            for value in values {
                assert!(!value.is_empty() && value.len() <= max, "entity {value:?} of post {}", post.id);
                assert!(!value.chars().any(char::is_control), "control character in {value:?}");
            }
        }
        assert!(post.media.len() <= limits::MEDIA_PER_POST);
        for item in &post.media {
            assert!(item.alt.as_ref().is_none_or(|alt| alt.len() <= limits::ALT_BYTES));
            for url in [&item.url, &item.preview_url].into_iter().flatten() {
                assert!(url.len() <= limits::URL_BYTES && !url.chars().any(char::is_control), "media url {url:?}");
            }
        }
        for url in [&post.author.avatar_url, &post.permalink].into_iter().flatten() {
            assert!(url.starts_with("http") && url.len() <= limits::URL_BYTES, "address {url:?}");
        }
        let counts = [post.counts.likes, post.counts.retweets, post.counts.replies, post.counts.quotes];
        assert!(counts.iter().all(|count| *count <= limits::COUNT));
    }
}

/// Mastodon's sanitized HTML to text: never panics, and keeps no tag markup
/// from well-formed input it was given.
pub fn mastodon_html(data: &[u8]) {
    let (text, links) = ingest::fuzzing::html_to_text(&text_of(data));
    assert!(links.iter().all(|link| !link.is_empty()));
    let _ = text;
}

/// SSE framing: the first byte cuts the rest into chunks of that size
/// (1–256 bytes), as a network would. Every frame is JSON, and the same
/// bytes in one chunk give the same frames.
pub fn sse(data: &[u8]) {
    let Some((&size, body)) = data.split_first() else { return };
    let size = usize::from(size) + 1;
    let chunks: Vec<&[u8]> = body.chunks(size).collect();
    let (frames, alive, unreadable) = ingest::fuzzing::sse_decode(&chunks);
    for frame in &frames {
        assert!(serde_json::from_str::<serde_json::Value>(frame).is_ok(), "frame is not JSON: {frame}");
    }
    let whole = ingest::fuzzing::sse_decode(&[body]);
    assert_eq!((frames, alive, unreadable), whole, "framing depends on how the bytes were cut");
}

/// Cursor strings from clients: decoding never panics, and a cursor that
/// decodes encodes back to one that decodes to the same cursor.
pub fn cursor(data: &[u8]) {
    let text = text_of(data);
    if let Ok(cursor) = model::Cursor::decode(&text) {
        let again = model::Cursor::decode(&cursor.encode());
        assert_eq!(again.as_ref(), Ok(&cursor));
    }
}

/// Entity extraction (twitter-text rules): the combined extraction keeps a
/// subset of each kind's own, in order, and indices are inside the text.
pub fn extract(data: &[u8]) {
    let text = text_of(data);
    let n_chars = text.chars().count();
    let entities = extract::extract(&text);
    for (list, found) in [
        (&entities.hashtags, extract::extract_hashtags_with_indices(&text)),
        (&entities.mentions, extract::extract_mentions_with_indices(&text)),
        (&entities.urls, extract::extract_urls_with_indices(&text)),
        (&entities.cashtags, extract::extract_cashtags_with_indices(&text)),
    ] {
        // The combined extraction drops entities that overlap another kind
        // (twitter-text's rule: `＠m` inside a link is no mention), so it
        // keeps a subset of what each kind's own extractor finds, in order.
        let mut own = found.iter().map(|(value, _, _)| value);
        assert!(list.iter().all(|value| own.any(|found| found == value)), "{text:?}: {list:?} vs {found:?}");
        for (_, start, end) in &found {
            assert!(start < end && *end <= n_chars + text.encode_utf16().count(), "{text:?}: {start}..{end}");
        }
    }
}

/// Field values for one post, as the structure-aware target builds them.
#[derive(Clone, Debug, arbitrary::Arbitrary)]
pub struct PostInput {
    pub source: u8,
    pub id: String,
    pub author_id: String,
    pub handle: String,
    pub name: String,
    pub text: String,
    pub lang: Option<String>,
    pub hashtags: Vec<String>,
    pub mentions: Vec<String>,
    pub urls: Vec<String>,
    pub cashtags: Vec<String>,
    /// Seconds from the receive time (negative: older; positive: the future).
    pub claimed_offset_s: i32,
    pub likes: u64,
    pub avatar_url: Option<String>,
    pub permalink: Option<String>,
    /// Photos: address, alt text, size.
    pub media: Vec<(String, String, u32)>,
    pub query: String,
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap_or_else(|error| panic!("{error}"))
    })
}

/// A post built from arbitrary field values goes through the normalization
/// boundary; if it is kept, it is stored in a fresh embedded store and read
/// back through the timeline of a query. The store's answer, the
/// percolator's and the matcher's must agree, and the post must respect the
/// boundary's limits.
pub fn post_roundtrip(input: &PostInput) {
    let source = match input.source % 4 {
        0 => Source::X,
        1 => Source::Bluesky,
        2 => Source::Mastodon,
        _ => Source::Demo,
    };
    let mut post = base_post(&input.id, &input.text);
    post.source = source;
    post.author = Author {
        id: input.author_id.clone(),
        handle: input.handle.clone(),
        name: input.name.clone(),
        avatar_url: input.avatar_url.clone(),
    };
    post.permalink = input.permalink.clone();
    post.media = input
        .media
        .iter()
        .map(|(url, alt, width)| model::Media {
            kind: model::MediaKind::Photo,
            url: Some(url.clone()),
            preview_url: None,
            width: Some(*width),
            height: Some(*width),
            alt: Some(alt.clone()),
        })
        .collect();
    post.lang = input.lang.clone();
    post.created_at = received() + chrono::Duration::seconds(i64::from(input.claimed_offset_s));
    post.hashtags = input.hashtags.clone();
    post.mentions = input.mentions.clone();
    post.urls = input.urls.clone();
    post.cashtags = input.cashtags.clone();
    post.counts.likes = input.likes;
    let mut bundle = PostBundle::single(post);
    if ingest::normalize::bundle(&mut bundle, received(), ingest::fuzzing::fill_entities).is_err() {
        return;
    }
    check_bundle(&bundle);
    let stored = StoredPost { post: bundle.post.clone(), retweeted: None, quoted: None };
    let doc = Doc::new(&stored);
    let Ok(query) = Query::parse(&input.query) else { return };
    check_agreement(&query, &doc);
    let matched = query.matches_doc(&doc);

    let Ok(dir) = tempfile::tempdir() else { return };
    let store = match EmbeddedStore::open(dir.path()) {
        Ok(store) => store,
        Err(error) => panic!("open a fresh store: {error}"),
    };
    let id = bundle.post.id.clone();
    runtime().block_on(async {
        let batch = WriteBatch { events: vec![PostEvent::Upsert(bundle)], checkpoints: Vec::new() };
        if let Err(error) = store.apply(batch).await {
            panic!("a normalized post was not stored: {error}");
        }
        match store.timeline(&store::Reader::internal(), &query, Range::default(), 10).await {
            Ok(page) => {
                let found = page.posts.iter().any(|post| post.post.id == id);
                // A read may stop early on its work budget, with a cursor to go on.
                if page.next.is_none() {
                    assert_eq!(found, matched, "store and matcher disagree on {:?} for {id:?}", query.text());
                } else {
                    assert!(!found || matched, "the store returned a post the matcher refuses");
                }
            }
            Err(error) => panic!("timeline read failed on {:?}: {error}", query.text()),
        }
    });
}
