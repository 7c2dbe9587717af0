//! Synthetic load: realistic X API v2 stream messages (~1 KB each, with
//! `includes`, metrics and entities as the filtered stream sends them),
//! column queries, and posts for the percolator.

use chrono::{TimeZone, Utc};
use model::{Author, Counts, Kind, Origin, Post, RawRecord, Source, StoredPost};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const WORDS: &[&str] = &[
    "stage",
    "army",
    "love",
    "concert",
    "album",
    "song",
    "dance",
    "today",
    "tonight",
    "streaming",
    "vote",
    "music",
    "video",
    "world",
    "tour",
    "happy",
    "birthday",
    "proud",
    "forever",
    "best",
    "show",
    "live",
    "new",
    "week",
    "진짜",
    "오늘",
    "콘서트",
    "사랑해",
    "최고",
    "무대",
    "노래",
    "방탄소年",
    "ありがとう",
    "最高",
    "hoy",
    "amor",
    "lindo",
    "keren",
    "banget",
    "สวย",
    "มาก",
    "fans",
    "photo",
    "look",
    "wow",
    "omg",
    "again",
    "first",
    "year",
];
const LANGS: &[&str] = &["en", "ko", "ja", "es", "pt", "in", "th"];

/// A hashtag with Zipf-like popularity among `n_tags`.
fn zipf_tag(rng: &mut StdRng, n_tags: usize) -> String {
    let rank = (n_tags as f64).powf(rng.random::<f64>()) as usize;
    match rank {
        0 | 1 => "BTS".to_owned(),
        2 => "방탄소년단".to_owned(),
        3 => "ARMY".to_owned(),
        rank => format!("tag{rank}"),
    }
}

/// One realistic v2 filtered-stream message.
pub fn v2_message(rng: &mut StdRng, id: u64, created_ms: i64) -> String {
    let n_words = rng.random_range(6..18);
    let mut text = String::new();
    let mut hashtags = Vec::new();
    for _ in 0..n_words {
        text.push_str(WORDS[rng.random_range(0..WORDS.len())]);
        text.push(' ');
    }
    for _ in 0..rng.random_range(0..4) {
        let tag = zipf_tag(rng, 1000);
        let start = text.chars().count();
        text.push('#');
        text.push_str(&tag);
        hashtags.push(json!({"start": start, "end": start + 1 + tag.chars().count(), "tag": tag}));
        text.push(' ');
    }
    let author = rng.random_range(1..200_000u64);
    let created_at = Utc
        .timestamp_millis_opt(created_ms)
        .single()
        .unwrap_or_else(Utc::now)
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    json!({
        "data": {
            "id": id.to_string(),
            "text": text.trim_end(),
            "author_id": author.to_string(),
            "conversation_id": id.to_string(),
            "created_at": created_at,
            "lang": LANGS[rng.random_range(0..LANGS.len())],
            "possibly_sensitive": false,
            "reply_settings": "everyone",
            "source": "Twitter for iPhone",
            "edit_history_tweet_ids": [id.to_string()],
            "public_metrics": {"retweet_count": rng.random_range(0..50), "reply_count": rng.random_range(0..5),
                               "like_count": rng.random_range(0..200), "quote_count": 0},
            "entities": {"hashtags": hashtags}
        },
        "includes": {"users": [{
            "id": author.to_string(), "name": format!("Fan number {author}"), "username": format!("fan_{author}"),
            "created_at": "2019-06-01T12:00:00.000Z", "verified": false, "protected": false,
            "description": "ARMY since 2015 💜 streaming every day",
            "public_metrics": {"followers_count": 120, "following_count": 300, "tweet_count": 5000, "listed_count": 1}
        }]},
        "matching_rules": [{"id": "1587654321098765432", "tag": "bts"}]
    })
    .to_string()
}

/// An endless stream of v2 messages, as fast as the pipeline takes them.
pub struct V2Source {
    next_id: u64,
}

impl V2Source {
    pub fn new(first_id: u64) -> V2Source {
        V2Source { next_id: first_id }
    }
}

#[async_trait::async_trait]
impl ingest::Source for V2Source {
    fn name(&self) -> &str {
        "bench"
    }

    async fn run(
        self: Box<Self>,
        _checkpoint: Option<String>,
        out: mpsc::Sender<RawRecord>,
        shutdown: CancellationToken,
    ) -> Result<(), ingest::SourceError> {
        let mut rng = StdRng::seed_from_u64(self.next_id);
        let mut id = self.next_id;
        while !shutdown.is_cancelled() {
            if out.send(v2_record(&mut rng, id)).await.is_err() {
                break;
            }
            id += 1;
        }
        Ok(())
    }
}

/// The record of source `bench` carrying post `id` as a v2 message.
pub fn v2_record(rng: &mut StdRng, id: u64) -> RawRecord {
    let created_ms = 1_790_000_000_000i64 + (id as i64 % 1_000_000_000) / 10;
    RawRecord {
        key: id.to_string(),
        origin: Origin { source: "bench".into(), position: id, checkpoint: None },
        payload: v2_message(rng, id, created_ms),
        received_ms: None,
    }
}

/// `n` records as [`V2Source`] makes them, from id `first_id`.
pub fn v2_records(first_id: u64, n: u64) -> Vec<RawRecord> {
    let mut rng = StdRng::seed_from_u64(first_id);
    (first_id..first_id + n).map(|id| v2_record(&mut rng, id)).collect()
}

/// Records made beforehand, sent as fast as the pipeline takes them; then
/// the source ends.
pub struct RecordsSource {
    pub records: Vec<RawRecord>,
}

#[async_trait::async_trait]
impl ingest::Source for RecordsSource {
    fn name(&self) -> &str {
        "bench"
    }

    async fn run(
        self: Box<Self>,
        _checkpoint: Option<String>,
        out: mpsc::Sender<RawRecord>,
        shutdown: CancellationToken,
    ) -> Result<(), ingest::SourceError> {
        for record in self.records {
            if shutdown.is_cancelled() || out.send(record).await.is_err() {
                break;
            }
        }
        Ok(())
    }
}

/// A word of a large vocabulary with Zipf-like frequency (`w1` most common).
fn zipf_word(rng: &mut StdRng) -> String {
    format!("w{}", (100_000f64.powf(rng.random::<f64>())) as usize)
}

/// A mix of column queries like users open: hashtags, keywords, users, and
/// some with operators. Keywords come from the same Zipf vocabulary as the
/// posts, so a few queries are very busy and most are quiet.
pub fn column_queries(n: usize, seed: u64) -> Vec<String> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n)
        .map(|query_idx| match query_idx % 5 {
            0 => format!("#{}", zipf_tag(&mut rng, 5000)),
            1 => format!("{} {}", zipf_word(&mut rng), zipf_word(&mut rng)),
            2 => format!("from:fan_{}", rng.random_range(1..200_000u64)),
            3 => format!("{} -filter:retweets", zipf_word(&mut rng)),
            _ => format!("#{} lang:{}", zipf_tag(&mut rng, 5000), LANGS[rng.random_range(0..LANGS.len())]),
        })
        .collect()
}

/// Posts as the percolator sees them after storage.
pub fn stored_posts(n: usize, seed: u64) -> Vec<StoredPost> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n)
        .map(|post_idx| {
            let mut text = String::new();
            let mut hashtags = Vec::new();
            for _ in 0..rng.random_range(3..9) {
                text.push_str(WORDS[rng.random_range(0..WORDS.len())]);
                text.push(' ');
            }
            for _ in 0..rng.random_range(3..9) {
                text.push_str(&zipf_word(&mut rng));
                text.push(' ');
            }
            for _ in 0..rng.random_range(0..4) {
                let tag = zipf_tag(&mut rng, 1000);
                text.push_str(&format!("#{tag} "));
                hashtags.push(tag);
            }
            let author = rng.random_range(1..200_000u64);
            let post = Post {
                id: post_idx.to_string(),
                source: Source::X,
                kind: Kind::Post,
                author: Author {
                    id: author.to_string(),
                    handle: format!("fan_{author}"),
                    name: String::new(),
                    avatar_url: None,
                },
                text,
                lang: Some(LANGS[rng.random_range(0..LANGS.len())].into()),
                created_at: Utc::now(),
                claimed_at: None,
                retweeted_id: None,
                quoted_id: None,
                reply_to: None,
                hashtags,
                mentions: Vec::new(),
                urls: Vec::new(),
                cashtags: Vec::new(),
                has_media: false,
                media: Vec::new(),
                card: None,
                sensitive: false,
                permalink: None,
                counts: Counts::default(),
            };
            StoredPost { post, retweeted: None, quoted: None }
        })
        .collect()
}
