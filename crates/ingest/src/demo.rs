//! The built-in demo stream: synthetic traffic that looks like the real
//! thing around BTS — seven languages, Zipf-popular hashtags, retweet
//! cascades (a few posts retweeted thousands of times), replies, quotes,
//! media, and bursts (a comeback announcement) on a steady rate.
//! Reproducible: the same seed gives the same posts (times are the clock's).

use std::collections::VecDeque;
use std::time::Duration;

use chrono::Utc;
use model::{Author, Counts, Kind, Origin, Post, PostBundle, PostEvent, RawRecord, ReplyTo, Source};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::{ParseError, SourceError};

/// Accounts in the synthetic population.
const N_ACCOUNTS: usize = 5_000;
/// Originals a retweet may pick from.
const RECENT_ORIGINALS: usize = 3_000;
/// Past retweet targets kept for preferential attachment.
const RECENT_TARGETS: usize = 20_000;
/// A burst every this many seconds, lasting `BURST_SECONDS`, at `BURST_FACTOR` × the rate.
const BURST_EVERY_SECONDS: u64 = 300;
const BURST_SECONDS: u64 = 30;
const BURST_FACTOR: f64 = 4.0;

/// Hashtags by popularity rank (rank 1 is the most used).
const HASHTAGS: &[&str] = &[
    "BTS", "방탄소년단", "ARMY", "JIMIN", "지민", "JungKook", "정국", "V", "뷔", "SUGA", "슈가", "RM", "JIN", "진", "jhope",
    "제이홉", "BTS_Butter", "Dynamite", "PermissiontoDance", "BTSARMY", "BTS_twt", "보라해", "LoveYourself", "MAP_OF_THE_SOUL",
    "PROOF", "YetToCome", "FESTA", "BANGBANGCON", "ARIRANG", "BTSinLA", "BTSinSeoul", "kpop", "KPOP", "streaming",
    "MusicBank", "Inkigayo", "MCOUNTDOWN", "GRAMMYs", "BBMAs", "AMAs", "Billboard", "HYBE", "Weverse", "purple", "💜",
];

/// What the comeback burst talks about.
const BURST_HASHTAGS: &[&str] = &["BTS_COMEBACK", "BTSComeback", "방탄소년단_컴백"];

/// Short templates per language; `{m}` is a member, `{t}` a hashtag.
const TEMPLATES: &[(&str, &[&str])] = &[
    ("ko", &[
        "방탄소년단 {m} 오늘 무대 진짜 최고였어 ㅠㅠ {t}",
        "{m} 목소리 너무 좋아요 💜 방탄소년단이 최고야 {t}",
        "콘서트 티켓팅 성공!! 방탄소년단 보러 간다 {t}",
        "아미들 스트리밍 목표 달성하자 🔥 {t}",
        "방탄소년단의 새 앨범 너무 기대돼요 {t}",
        "{m} 생일 축하해요 🎂 {t}",
    ]),
    ("en", &[
        "BTS {m} just killed that stage omg {t}",
        "streaming goal for today: 1M views, let's go ARMY 💜 {t}",
        "can't stop listening to the new BTS album {t}",
        "{m} looked so good at the concert last night {t}",
        "BTS world tour dates just dropped!!! {t}",
        "happy birthday {m}, ARMY loves you 💜 {t}",
    ]),
    ("ja", &[
        "BTSの{m}が最高すぎる💜 {t}",
        "防弾少年団のライブ楽しみ！ {t}",
        "新しいアルバム毎日聴いてます {t}",
    ]),
    ("es", &[
        "BTS {m} en el escenario fue increíble 💜 {t}",
        "ARMY, a votar por BTS hoy {t}",
        "no puedo dejar de escuchar a BTS {t}",
    ]),
    ("pt", &[
        "BTS {m} arrasou demais no show 💜 {t}",
        "ARMY brasileira, vamos fazer streaming hoje {t}",
    ]),
    ("in", &[
        "BTS {m} keren banget di panggung 💜 {t}",
        "ARMY Indonesia ayo streaming {t}",
    ]),
    ("th", &[
        "BTS {m} น่ารักมาก 💜 {t}",
        "อาร์มี่ไทยสตรีมกันเถอะ {t}",
    ]),
];

const MEMBERS: &[&str] = &["RM", "Jin", "SUGA", "j-hope", "Jimin", "V", "Jung Kook", "지민", "정국", "뷔", "진", "슈가"];
/// Language mix (weights out of 100), roughly that of BTS traffic.
const LANGUAGE_WEIGHTS: &[u32] = &[30, 35, 10, 10, 6, 5, 4];
const HANDLE_PARTS: &[&str] =
    &["army", "purple", "borahae", "mochi", "kookie", "tata", "yoongi", "namjoon", "seokjin", "hobi", "btsfan", "bangtan"];

/// Parses the demo format: `{"deck": PostBundle}`.
pub(crate) fn parse(value: &Value) -> Result<Vec<PostEvent>, ParseError> {
    let bundle: PostBundle = serde_json::from_value(value.clone()).map_err(|error| ParseError::Json(error.to_string()))?;
    Ok(vec![PostEvent::Upsert(bundle)])
}

/// The demo source.
pub struct DemoSource {
    rate: f64,
    seed: u64,
}

impl DemoSource {
    pub fn new(rate: f64, seed: u64) -> DemoSource {
        DemoSource { rate: rate.max(0.1), seed }
    }
}

/// The generator's state; pure given the seed and the clock.
pub struct DemoGenerator {
    rng: StdRng,
    accounts: Vec<Author>,
    next_sequence: u64,
    recent_originals: VecDeque<Post>,
    recent_targets: VecDeque<usize>,
    /// Retweets seen per original (index into `recent_originals` by id).
    retweet_counts: std::collections::HashMap<String, u64>,
}

/// Zipf-like rank: P(rank ≥ k) ≈ 1/k.
fn zipf_index(rng: &mut StdRng, n: usize) -> usize {
    let uniform: f64 = rng.random_range(0.0..1.0);
    (((n as f64).powf(uniform)) as usize).saturating_sub(1).min(n - 1)
}

impl DemoGenerator {
    pub fn new(seed: u64) -> DemoGenerator {
        let mut rng = StdRng::seed_from_u64(seed);
        let accounts = (0..N_ACCOUNTS)
            .map(|account_idx| {
                let part = HANDLE_PARTS[rng.random_range(0..HANDLE_PARTS.len())];
                let handle = format!("{part}_{account_idx}");
                let name = format!("{} {}", part[..1].to_uppercase() + &part[1..], ["💜", "🐰", "🐥", "🐯", "🐨", ""][account_idx % 6]);
                Author { id: format!("demo-{account_idx}"), handle, name: name.trim().to_owned() }
            })
            .collect();
        DemoGenerator {
            rng,
            accounts,
            next_sequence: 0,
            recent_originals: VecDeque::new(),
            recent_targets: VecDeque::new(),
            retweet_counts: Default::default(),
        }
    }

    fn next_id(&mut self, now_ms: i64) -> String {
        self.next_sequence += 1;
        // Snowflake-like: time, then a sequence, so ids sort by time.
        (((now_ms as u64) << 22) | (self.next_sequence & 0x3F_FFFF)).to_string()
    }

    fn language(&mut self) -> usize {
        let mut pick = self.rng.random_range(0..LANGUAGE_WEIGHTS.iter().sum::<u32>());
        for (language_idx, weight) in LANGUAGE_WEIGHTS.iter().enumerate() {
            if pick < *weight {
                return language_idx;
            }
            pick -= weight;
        }
        0
    }

    /// The next post; `bursting` while a comeback is being announced.
    pub fn next_bundle(&mut self, bursting: bool) -> PostBundle {
        let now = Utc::now();
        let now_ms = now.timestamp_millis();
        let id = self.next_id(now_ms);
        let author = self.accounts[zipf_index(&mut self.rng, N_ACCOUNTS)].clone();
        let roll: f64 = self.rng.random_range(0.0..1.0);
        // About 45% retweets, as in real fan traffic.
        if roll < 0.45 && !self.recent_originals.is_empty() {
            let target = self.retweet_target();
            let original = self.recent_originals[target].clone();
            let count = self.retweet_counts.entry(original.id.clone()).or_insert(0);
            *count += 1;
            self.recent_targets.push_back(target);
            if self.recent_targets.len() > RECENT_TARGETS {
                self.recent_targets.pop_front();
            }
            let post = Post {
                id,
                source: Source::Demo,
                kind: Kind::Retweet,
                author,
                text: format!("RT @{}: {}", original.author.handle, original.text),
                lang: original.lang.clone(),
                created_at: now,
                retweeted_id: Some(original.id.clone()),
                quoted_id: None,
                reply_to: None,
                hashtags: Vec::new(),
                mentions: Vec::new(),
                urls: Vec::new(),
                cashtags: Vec::new(),
                has_media: original.has_media,
                counts: Counts::default(),
            };
            return PostBundle { post, retweeted: Some(Box::new(original)), quoted: None };
        }
        let language_idx = self.language();
        let (lang, templates) = TEMPLATES[language_idx];
        let template = templates[self.rng.random_range(0..templates.len())];
        let member = MEMBERS[self.rng.random_range(0..MEMBERS.len())];
        let mut tags = vec![HASHTAGS[zipf_index(&mut self.rng, HASHTAGS.len())]];
        if self.rng.random_bool(0.4) {
            tags.push(HASHTAGS[zipf_index(&mut self.rng, HASHTAGS.len())]);
        }
        if bursting && self.rng.random_bool(0.7) {
            tags.insert(0, BURST_HASHTAGS[self.rng.random_range(0..BURST_HASHTAGS.len())]);
        }
        tags.dedup();
        let tag_text: Vec<String> = tags.iter().map(|tag| format!("#{tag}")).collect();
        let mut text = template.replace("{m}", member).replace("{t}", &tag_text.join(" "));
        if bursting && self.rng.random_bool(0.5) {
            text = format!("🚨 BTS COMEBACK ANNOUNCED 🚨 {text}");
        }
        let mut post = Post {
            id,
            source: Source::Demo,
            kind: Kind::Post,
            author,
            text,
            lang: Some(lang.to_owned()),
            created_at: now,
            retweeted_id: None,
            quoted_id: None,
            reply_to: None,
            hashtags: Vec::new(),
            mentions: Vec::new(),
            urls: Vec::new(),
            cashtags: Vec::new(),
            has_media: self.rng.random_bool(0.25),
            counts: Counts { likes: self.rng.random_range(0..40), ..Counts::default() },
        };
        let mut quoted = None;
        if !self.recent_originals.is_empty() {
            let other_idx = self.rng.random_range(0..self.recent_originals.len());
            if roll < 0.60 {
                let parent = self.recent_originals[other_idx].clone();
                post.kind = Kind::Reply;
                post.text = format!("@{} {}", parent.author.handle, post.text);
                post.reply_to = Some(ReplyTo {
                    post_id: Some(parent.id.clone()),
                    author_id: Some(parent.author.id.clone()),
                    handle: Some(parent.author.handle.clone()),
                });
            } else if roll < 0.66 {
                let parent = self.recent_originals[other_idx].clone();
                post.kind = Kind::Quote;
                post.quoted_id = Some(parent.id.clone());
                quoted = Some(Box::new(parent));
            }
        }
        self.recent_originals.push_back(post.clone());
        if self.recent_originals.len() > RECENT_ORIGINALS {
            self.recent_originals.pop_front();
            // Indices shift by one when the oldest leaves.
            self.recent_targets.retain(|target| *target > 0);
            for target in self.recent_targets.iter_mut() {
                *target -= 1;
            }
        }
        PostBundle { post, retweeted: None, quoted }
    }

    /// Preferential attachment: mostly copy an earlier retweet's target
    /// (so the retweeted get retweeted more), sometimes a fresh original.
    fn retweet_target(&mut self) -> usize {
        if !self.recent_targets.is_empty() && self.rng.random_bool(0.85) {
            let pick = self.rng.random_range(0..self.recent_targets.len());
            return self.recent_targets[pick];
        }
        self.rng.random_range(0..self.recent_originals.len())
    }
}

#[async_trait::async_trait]
impl crate::Source for DemoSource {
    fn name(&self) -> &str {
        "demo"
    }

    async fn run(
        self: Box<Self>,
        _checkpoint: Option<String>,
        out: mpsc::Sender<RawRecord>,
        shutdown: CancellationToken,
    ) -> Result<(), SourceError> {
        let mut generator = DemoGenerator::new(self.seed);
        let started = tokio::time::Instant::now();
        let mut due = 0.0f64;
        let mut last = started;
        let mut position = 0u64;
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = shutdown.cancelled() => return Ok(()),
            }
            let now = tokio::time::Instant::now();
            let seconds = now.duration_since(started).as_secs();
            let bursting = seconds % BURST_EVERY_SECONDS >= BURST_EVERY_SECONDS - BURST_SECONDS;
            let rate = if bursting { self.rate * BURST_FACTOR } else { self.rate };
            due += now.duration_since(last).as_secs_f64() * rate;
            last = now;
            while due >= 1.0 {
                due -= 1.0;
                position += 1;
                let bundle = generator.next_bundle(bursting);
                let key = bundle.post.id.clone();
                let payload = serde_json::json!({ "deck": bundle }).to_string();
                let record = RawRecord { key, origin: Origin { source: "demo".into(), position, checkpoint: None }, payload };
                if out.send(record).await.is_err() {
                    return Ok(());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(seed: u64, n: usize) -> Vec<(String, Kind, Option<String>)> {
        let mut generator = DemoGenerator::new(seed);
        (0..n)
            .map(|_| {
                let bundle = generator.next_bundle(false);
                (bundle.post.text, bundle.post.kind, bundle.post.retweeted_id.map(|_| bundle.retweeted.unwrap().text))
            })
            .collect()
    }

    #[test]
    fn the_same_seed_gives_the_same_stream() {
        assert_eq!(texts(42, 500), texts(42, 500));
        assert_ne!(texts(42, 500), texts(43, 500));
    }

    #[test]
    fn the_stream_looks_like_fan_traffic() {
        let mut generator = DemoGenerator::new(7);
        let bundles: Vec<PostBundle> = (0..20_000).map(|_| generator.next_bundle(false)).collect();
        let n_retweets = bundles.iter().filter(|bundle| bundle.post.kind == Kind::Retweet).count();
        assert!((7_000..11_000).contains(&n_retweets), "{n_retweets} retweets");
        assert!(bundles.iter().any(|bundle| bundle.post.kind == Kind::Reply));
        assert!(bundles.iter().any(|bundle| bundle.post.kind == Kind::Quote));
        let languages: std::collections::HashSet<_> = bundles.iter().filter_map(|bundle| bundle.post.lang.clone()).collect();
        assert_eq!(languages.len(), 7);
        let mentions_bts = bundles
            .iter()
            .filter(|bundle| {
                let text = bundle.retweeted.as_ref().map_or(&bundle.post.text, |original| &original.text);
                text.contains("BTS") || text.contains("방탄소년단")
            })
            .count();
        assert!(mentions_bts * 5 > bundles.len(), "BTS columns stay lively: {mentions_bts}");
        // Cascades: the most retweeted original gets far more than its share.
        let top = generator.retweet_counts.values().max().copied().unwrap_or(0);
        assert!(top > 200, "the top original has {top} retweets");
    }

    #[test]
    fn bursts_bring_the_comeback_tag() {
        let mut generator = DemoGenerator::new(1);
        let bursting = (0..1000).filter(|_| generator.next_bundle(true).post.text.contains("BTS_COMEBACK")).count();
        assert!(bursting > 100);
    }
}
