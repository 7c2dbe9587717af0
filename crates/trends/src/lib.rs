//! Live trends: hashtag ranking, trending-by-velocity and the most retweeted
//! posts over sliding event-time windows, behind one [`TrendStore`] trait with
//! an in-process backend ([`EmbeddedTrends`]) and a Redis one ([`RedisTrends`]).
//!
//! The exact semantics (buckets, windows, baselines, the velocity formula, tie
//! orders, deletes and duplicates) are written down in `docs/trends.md`; both
//! backends implement them exactly, and the tests compare both with a
//! brute-force recount.

mod embedded;
mod redis_store;

pub use embedded::{DEFAULT_MAX_TRACKED_IDS, EmbeddedTrends, TrendStats};
pub use redis_store::RedisTrends;

/// Length of one time bucket. Windows are whole numbers of buckets.
pub const BUCKET_MS: i64 = 60_000;

/// How many buckets back from the newest bucket anything is kept: the longest
/// window plus its baseline (24 h + 24 h). Older events are ignored.
pub const RETENTION_BUCKETS: i64 = 2 * 1440;

/// Event-time horizon that a restart must re-feed (see [`RETENTION_BUCKETS`]).
pub const RETENTION_MS: i64 = RETENTION_BUCKETS * BUCKET_MS;

/// How many of a window's most used tags are scored for velocity.
pub const TRENDING_CANDIDATES: usize = 256;

/// A tag trends only when at least this many distinct accounts used it in
/// the recent window (so two friends cannot start a trend).
pub const TRENDING_MIN_ACCOUNTS: u64 = 3;

/// A tag trends only when at least this many times as many accounts used it
/// as usual, so the tags that are always on top do not fill the list.
pub const TRENDING_MIN_RATIO: f64 = 2.0;

/// A sliding window over event time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Window {
    FiveMinutes,
    OneHour,
    OneDay,
}

impl Window {
    /// Every window, shortest first.
    pub const ALL: [Window; 3] = [Window::FiveMinutes, Window::OneHour, Window::OneDay];

    /// Parses the wire name: `5m`, `1h` or `24h`.
    pub fn parse(text: &str) -> Option<Window> {
        match text {
            "5m" => Some(Window::FiveMinutes),
            "1h" => Some(Window::OneHour),
            "24h" => Some(Window::OneDay),
            _ => None,
        }
    }

    /// The wire name (`5m`, `1h`, `24h`).
    pub fn as_str(&self) -> &'static str {
        match self {
            Window::FiveMinutes => "5m",
            Window::OneHour => "1h",
            Window::OneDay => "24h",
        }
    }

    /// The window's length in one-minute buckets.
    pub fn buckets(&self) -> i64 {
        match self {
            Window::FiveMinutes => 5,
            Window::OneHour => 60,
            Window::OneDay => 1440,
        }
    }

    /// The length, in buckets, of the baseline period that immediately
    /// precedes the window and gives each tag its expected rate.
    pub fn baseline_buckets(&self) -> i64 {
        match self {
            Window::FiveMinutes => 60,
            Window::OneHour => 360,
            Window::OneDay => 1440,
        }
    }

    /// How many window-long sub-windows the baseline holds.
    pub fn baseline_windows(&self) -> i64 {
        self.baseline_buckets() / self.buckets()
    }

    /// Position of this window in [`Window::ALL`].
    pub(crate) fn index(&self) -> usize {
        match self {
            Window::FiveMinutes => 0,
            Window::OneHour => 1,
            Window::OneDay => 2,
        }
    }
}

impl std::fmt::Display for Window {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The bucket an event time falls in (floor division, so times before the
/// epoch land in negative buckets rather than sharing bucket 0).
pub fn bucket_of(created_ms: i64) -> i64 {
    created_ms.div_euclid(BUCKET_MS)
}

/// What the trend store needs to know of one stored post (the pipeline builds
/// it from [`model::Post`] with [`TrendEvent::from_post`]).
#[derive(Clone, Debug)]
pub struct TrendEvent {
    pub post_id: String,
    pub author_id: String,
    pub created_ms: i64,
    /// Display forms as written, without `#`. For a retweet: the original's
    /// hashtags (a retweet counts as a use of its original's hashtags).
    pub hashtags: Vec<String>,
    /// For a retweet: the original's id.
    pub retweeted_id: Option<String>,
}

impl TrendEvent {
    /// Builds the event for a stored post; `original` is the retweeted post
    /// when `post` is a retweet and the original is known.
    pub fn from_post(post: &model::Post, original: Option<&model::Post>) -> TrendEvent {
        let retweeted_id = if post.is_retweet() {
            post.retweeted_id.clone().or_else(|| original.map(|original| original.id.clone()))
        } else {
            None
        };
        // A retweet's own entities are usually empty or a truncated copy of
        // the original's, so the original's hashtags are the ones it uses.
        let hashtags = match (post.is_retweet(), original) {
            (true, Some(original)) => original.hashtags.clone(),
            _ => post.hashtags.clone(),
        };
        TrendEvent {
            post_id: post.id.clone(),
            author_id: post.author.id.clone(),
            created_ms: post.created_at.timestamp_millis(),
            hashtags,
            retweeted_id,
        }
    }

    /// The hashtags this post counts once each: `(folded key, display form)`
    /// pairs, without empty tags, a tag repeated in one post counted once
    /// with the form of its first occurrence.
    pub fn tag_uses(&self) -> Vec<(String, &str)> {
        let mut uses: Vec<(String, &str)> = Vec::with_capacity(self.hashtags.len());
        for display in &self.hashtags {
            let display = display.strip_prefix('#').unwrap_or(display);
            if display.is_empty() {
                continue;
            }
            let key = fold_tag(display);
            if !uses.iter().any(|(seen, _)| *seen == key) {
                uses.push((key, display));
            }
        }
        uses
    }
}

/// The case-folded key of a hashtag: Unicode lowercase (`#BTS` and `#bts`
/// are one tag).
pub fn fold_tag(display: &str) -> String {
    if display.bytes().all(|byte| !byte.is_ascii_uppercase() && byte.is_ascii()) {
        return display.to_owned();
    }
    display.to_lowercase()
}

/// How much a tag's use is above its own baseline (see `docs/trends.md`).
///
/// `baseline_accounts` is the sum, over the baseline's window-long
/// sub-windows, of the distinct accounts in each, so `expected` is the mean
/// distinct accounts per window-long period:
/// `expected = baseline_accounts / baseline_windows`, floored at 1 (`e`),
/// and `score = observed − e`, the accounts above the usual level, when
/// `observed` reaches [`TRENDING_MIN_ACCOUNTS`] and at least
/// [`TRENDING_MIN_RATIO`] × `e`, else 0 (not trending). The score is a count
/// of accounts, so the ranking reads as one. Returns `(score, expected)`
/// where `expected` is before the floor.
pub fn velocity_score(window: Window, observed: u64, baseline_accounts: u64) -> (f64, f64) {
    let expected = baseline_accounts as f64 / window.baseline_windows() as f64;
    let floored = expected.max(1.0);
    let observed_f = observed as f64;
    let score = if observed >= TRENDING_MIN_ACCOUNTS && observed_f >= TRENDING_MIN_RATIO * floored {
        observed_f - floored
    } else {
        0.0
    };
    (score, expected)
}

/// A hashtag and how many posts used it in the window.
#[derive(Clone, Debug, PartialEq)]
pub struct HashtagCount {
    /// The display form used most in the window (ties: the smallest string).
    pub tag: String,
    pub count: u64,
}

/// A hashtag whose use is rising above its own baseline.
#[derive(Clone, Debug, PartialEq)]
pub struct TrendingTag {
    /// The display form used most in the window.
    pub tag: String,
    /// The velocity score (see [`velocity_score`]).
    pub score: f64,
    /// Distinct accounts that used the tag in the window.
    pub accounts: u64,
    /// Accounts expected in a window of this length from the baseline (before
    /// the floor at 1).
    pub expected: f64,
}

/// An original post and how many of its retweets fall in the window.
#[derive(Clone, Debug, PartialEq)]
pub struct RetweetCount {
    pub post_id: String,
    pub count: u64,
}

/// The three rankings of one window.
#[derive(Clone, Debug, PartialEq)]
pub struct Ranking {
    pub window: Window,
    /// The newest event time seen (the window's end), or 0 before any event.
    pub ends_at_ms: i64,
    /// Most used first; ties by folded tag.
    pub hashtags: Vec<HashtagCount>,
    /// Highest score first; ties by accounts (more first), then folded tag.
    pub trending: Vec<TrendingTag>,
    /// Most retweeted first; ties by post id.
    pub top_retweeted: Vec<RetweetCount>,
}

impl Ranking {
    /// The ranking of a store that has seen nothing.
    pub fn empty(window: Window) -> Ranking {
        Ranking { window, ends_at_ms: 0, hashtags: Vec::new(), trending: Vec::new(), top_retweeted: Vec::new() }
    }
}

/// Why a trend store could not answer.
#[derive(Debug, thiserror::Error)]
pub enum TrendsError {
    /// Redis refused the command or the connection failed.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// Redis answered with something this crate did not write.
    #[error("unexpected reply from redis: {0}")]
    Protocol(String),
    /// Redis did not answer in time (down, restarting, or reconnecting).
    #[error("redis did not answer within {0:?}")]
    Timeout(std::time::Duration),
}

/// Live trend counts. Implementations are exact to the semantics of
/// `docs/trends.md` (the Redis backend included).
#[async_trait::async_trait]
pub trait TrendStore: Send + Sync {
    /// Counts posts that were newly stored. Recording the same post id twice
    /// counts it once (delivery upstream is at least once); a post removed
    /// before is not counted again.
    async fn record(&self, events: &[TrendEvent]) -> Result<(), TrendsError>;

    /// Takes deleted posts out of the counts: their hashtag uses, their
    /// authors' contributions, a deleted retweet from its original's count;
    /// a deleted original leaves `top_retweeted` entirely. Pass the same
    /// event that was recorded.
    async fn remove(&self, events: &[TrendEvent]) -> Result<(), TrendsError>;

    /// The rankings of one window, each at most `limit` long.
    async fn ranking(&self, window: Window, limit: usize) -> Result<Ranking, TrendsError>;

    /// A cheap check that the engine answers (for `/readyz`); the embedded
    /// trends always do.
    /// What an in-process store holds in memory (`None` for Redis, whose
    /// keys expire on their own).
    fn memory_stats(&self) -> Option<TrendStats> {
        None
    }

    async fn ping(&self) -> Result<(), TrendsError> {
        Ok(())
    }
}

/// Orders hashtag counts: most used first, ties by folded key.
pub fn hashtag_order(a: (u64, &str), b: (u64, &str)) -> std::cmp::Ordering {
    b.0.cmp(&a.0).then_with(|| a.1.cmp(b.1))
}

/// Orders trending tags: highest score first, then more accounts, then key.
pub fn trending_order(a: (f64, u64, &str), b: (f64, u64, &str)) -> std::cmp::Ordering {
    b.0.total_cmp(&a.0).then_with(|| b.1.cmp(&a.1)).then_with(|| a.2.cmp(b.2))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn windows_round_trip_through_their_names() {
        for window in Window::ALL {
            assert_eq!(Window::parse(window.as_str()), Some(window));
        }
        assert_eq!(Window::parse("2h"), None);
    }

    #[test]
    fn tags_fold_to_unicode_lowercase_and_count_once_per_post() {
        let event = TrendEvent {
            post_id: "1".into(),
            author_id: "a".into(),
            created_ms: 0,
            hashtags: vec!["BTS".into(), "bts".into(), "".into(), "ÄPFEL".into()],
            retweeted_id: None,
        };
        assert_eq!(event.tag_uses(), vec![("bts".to_owned(), "BTS"), ("äpfel".to_owned(), "ÄPFEL")]);
    }

    fn model_post(id: &str, kind: model::Kind, hashtags: &[&str]) -> model::Post {
        model::Post {
            id: id.into(),
            source: model::Source::Demo,
            kind,
            author: model::Author {
                id: format!("author-of-{id}"),
                handle: "h".into(),
                name: String::new(),
                avatar_url: None,
            },
            text: String::new(),
            lang: None,
            created_at: chrono::DateTime::from_timestamp_millis(1_700_000_000_123).unwrap(),
            claimed_at: None,
            retweeted_id: None,
            quoted_id: None,
            reply_to: None,
            hashtags: hashtags.iter().map(|tag| (*tag).to_owned()).collect(),
            mentions: Vec::new(),
            urls: Vec::new(),
            cashtags: Vec::new(),
            has_media: false,
            media: Vec::new(),
            card: None,
            sensitive: false,
            permalink: None,
            counts: model::Counts::default(),
        }
    }

    #[test]
    fn a_retweet_uses_its_originals_hashtags() {
        let original = model_post("1", model::Kind::Post, &["BTS"]);
        let mut retweet = model_post("2", model::Kind::Retweet, &[]);
        retweet.retweeted_id = Some("1".into());
        let event = TrendEvent::from_post(&retweet, Some(&original));
        assert_eq!(event.hashtags, vec!["BTS".to_owned()]);
        assert_eq!(event.retweeted_id.as_deref(), Some("1"));
        assert_eq!(event.author_id, "author-of-2");
        assert_eq!(event.created_ms, 1_700_000_000_123);
        let event = TrendEvent::from_post(&original, None);
        assert_eq!((event.hashtags.len(), event.retweeted_id), (1, None));
    }

    #[test]
    fn velocity_needs_more_accounts_than_expected() {
        assert_eq!(velocity_score(Window::FiveMinutes, 2, 0).0, 0.0);
        assert_eq!(velocity_score(Window::FiveMinutes, 3, 0).0, 2.0);
        // Always on top: 110 accounts against a usual 100 is not a trend.
        assert_eq!(velocity_score(Window::FiveMinutes, 110, 1200).0, 0.0);
        assert_eq!(velocity_score(Window::FiveMinutes, 200, 1200).0, 100.0);
        // 120 accounts over the previous hour expect 10 per five minutes.
        let (score, expected) = velocity_score(Window::FiveMinutes, 10, 120);
        assert_eq!((score, expected), (0.0, 10.0));
        assert_eq!(velocity_score(Window::FiveMinutes, 20, 120).0, 10.0);
    }
}
