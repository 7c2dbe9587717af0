//! The built-in demo stream: synthetic traffic that looks like the real
//! thing around BTS — seven languages, Zipf-popular hashtags, retweet
//! cascades (a few posts retweeted thousands of times), replies, quotes,
//! media, and bursts (a comeback announcement) on a steady rate.
//! Reproducible: the same seed gives the same posts (times are the clock's).

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use chrono::Utc;
use model::{
    Author, Counts, DEMO_MEDIA_ORIGIN, Kind, Media, MediaKind, Origin, Post, PostBundle, PostEvent, RawRecord, ReplyTo,
    Source,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::{ParseError, SourceError};

/// Accounts in the synthetic population.
const N_ACCOUNTS: usize = 5_000;
/// Originals a retweet, reply or quote may pick from (older ones fade out).
const RECENT_ORIGINALS: usize = 3_000;
/// The newest originals, among which a retweet may discover a post not yet retweeted.
const DISCOVERABLE_ORIGINALS: usize = 500;
/// Past retweets remembered for preferential attachment.
const RECENT_RETWEETS: usize = 50_000;
/// A comeback burst every this many seconds (the first after `FIRST_BURST_SECONDS`),
/// lasting `BURST_SECONDS`, at `BURST_FACTOR` × the steady rate.
const BURST_EVERY_SECONDS: u64 = 300;
const FIRST_BURST_SECONDS: u64 = 60;
const BURST_SECONDS: u64 = 30;
const BURST_FACTOR: f64 = 10.0;
/// Share of records that are retweets, as in real fan traffic.
const RETWEET_SHARE: f64 = 0.45;

/// Hashtags by popularity rank (rank 1 is the most used); drawn Zipf-like.
const HASHTAGS: &[&str] = &[
    "BTS",
    "방탄소년단",
    "ARMY",
    "JIMIN",
    "지민",
    "JungKook",
    "정국",
    "BTS_Butter",
    "V",
    "뷔",
    "SUGA",
    "슈가",
    "RM",
    "JIN",
    "진",
    "jhope",
    "제이홉",
    "Dynamite",
    "PermissiontoDance",
    "BTSARMY",
    "BTS_twt",
    "보라해",
    "LoveYourself",
    "MAP_OF_THE_SOUL",
    "PROOF",
    "YetToCome",
    "FESTA",
    "BANGBANGCON",
    "ARIRANG",
    "BTSinLA",
    "BTSinSeoul",
    "Butter",
    "SpringDay",
    "봄날",
    "Seven",
    "FACE",
    "Indigo",
    "GoldenJK",
    "MUSE",
    "D_DAY",
    "kpop",
    "KPOP",
    "streaming",
    "MusicBank",
    "Inkigayo",
    "MCOUNTDOWN",
    "GRAMMYs",
    "BBMAs",
    "AMAs",
    "Billboard",
    "HYBE",
    "Weverse",
    "purple",
    "방탄",
    "防弾少年団",
    "ジミン",
    "グク",
    "BTSBrasil",
    "BTSIndonesia",
    "ARMYTH",
    "BTSxARMY",
    "Proof_of_Inspiration",
];

/// The hashtag each comeback burst brings, one after the other.
const BURST_HASHTAGS: &[&str] = &["BTS_COMEBACK", "방탄소년단_컴백", "BTSComeback2026", "BTS_NEW_ALBUM"];

/// Short templates per language: `{m}` is a member, `{a}` an album or song,
/// `{t}` the hashtags. Language codes are BCP 47 (`id`, not Twitter's `in`).
const TEMPLATES: &[(&str, &[&str])] = &[
    (
        "ko",
        &[
            "방탄소년단 {m} 오늘 무대 진짜 최고였어 ㅠㅠ {t}",
            "{m} 목소리 너무 좋아요 💜 방탄소년단이 최고야 {t}",
            "콘서트 티켓팅 성공!! 방탄소년단 보러 간다 😭💜 {t}",
            "아미들 {a} 스트리밍 목표 달성하자 🔥 {t}",
            "방탄소년단의 새 앨범 너무 기대돼요 {t}",
            "{m} 생일 축하해요 🎂💜 {t}",
            "오늘 음방 1위 축하해 방탄 💜 {a} {t}",
            "{m} 위버스 라이브 보는 중 ㅋㅋㅋ 너무 귀여워 {t}",
        ],
    ),
    (
        "en",
        &[
            "BTS {m} just killed that stage omg 😭 {t}",
            "streaming goal for today: 1M views on {a}, let's go ARMY 💜 {t}",
            "can't stop listening to {a} by BTS {t}",
            "{m} looked so good at the concert last night {t}",
            "BTS world tour dates just dropped!!! who's going 🙋 {t}",
            "happy birthday {m}, ARMY loves you 💜 {t}",
            "{a} is still charting, proud of BTS 🏆 https://www.billboard.com/charts/hot-100 {t}",
            "voting thread for @BTS_twt 👇 keep going ARMY {t}",
        ],
    ),
    (
        "ja",
        &[
            "BTSの{m}が最高すぎる💜 {t}",
            "防弾少年団のライブ楽しみ！{a}聴きながら待機中 {t}",
            "新しいアルバム毎日聴いてます🎧 {t}",
            "{m}の笑顔に癒された…ARMYでよかった {t}",
        ],
    ),
    (
        "es",
        &[
            "BTS {m} en el escenario fue increíble 💜 {t}",
            "ARMY, a votar por BTS hoy 🗳️ {t}",
            "no puedo dejar de escuchar {a} de BTS {t}",
            "¡{m} te amamos! 💜 {t}",
        ],
    ),
    (
        "pt",
        &[
            "BTS {m} arrasou demais no show 💜 {t}",
            "ARMY brasileira, vamos fazer streaming de {a} hoje {t}",
            "chorando com {a} pela milésima vez 😭 {t}",
        ],
    ),
    (
        "id",
        &[
            "BTS {m} keren banget di panggung 💜 {t}",
            "ARMY Indonesia ayo streaming {a} {t}",
            "{m} ganteng banget hari ini 😍 {t}",
        ],
    ),
    ("th", &["BTS {m} น่ารักมาก 💜 {t}", "อาร์มี่ไทยสตรีม {a} กันเถอะ {t}", "คิดถึง {m} มากๆ 😭 {t}"]),
];

const MEMBERS: &[&str] =
    &["RM", "Jin", "SUGA", "j-hope", "Jimin", "V", "Jung Kook", "지민", "정국", "뷔", "진", "슈가"];
const ALBUMS: &[&str] = &[
    "Butter",
    "Dynamite",
    "Proof",
    "Map of the Soul: 7",
    "BE",
    "Love Yourself: Answer",
    "Spring Day",
    "Permission to Dance",
    "Yet To Come",
    "Life Goes On",
    "ON",
    "Black Swan",
];
/// Language mix (weights), roughly that of BTS traffic; the order of `TEMPLATES`.
const LANGUAGE_WEIGHTS: &[u32] = &[30, 35, 10, 10, 6, 5, 4];
const HANDLE_PARTS: &[&str] = &[
    "army", "purple", "borahae", "mochi", "kookie", "tata", "yoongi", "namjoon", "seokjin", "hobi", "btsfan",
    "bangtan", "jiminie", "taetae", "koo", "sope", "vmin", "jikook", "moon", "galaxy",
];
const NAME_PARTS: &[&str] = &[
    "Ana",
    "Mina",
    "Yuki",
    "Sofia",
    "Bianca",
    "Putri",
    "Nong",
    "Jisoo",
    "Emma",
    "Hana",
    "Lucía",
    "Dewi",
    "Sakura",
    "지은",
    "민지",
    "서연",
    "さくら",
    "Mali",
];
const NAME_SUFFIXES: &[&str] = &["💜", "🐰", "🐥", "🐯", "🐨", "⁷", "🐹", "🐱", ""];

/// Parses the demo format: `{"deck": PostBundle}` (the `deck` value is given).
pub(crate) fn parse(bundle: &str) -> Result<Vec<PostEvent>, ParseError> {
    let bundle: PostBundle = serde_json::from_str(bundle)?;
    Ok(vec![PostEvent::Upsert(bundle)])
}

/// The demo source: [`DemoGenerator`] at a steady rate with bursts.
pub struct DemoSource {
    rate: f64,
    seed: u64,
}

impl DemoSource {
    /// `rate` posts per second (at least 0.1), reproducible from `seed`.
    pub fn new(rate: f64, seed: u64) -> DemoSource {
        DemoSource { rate: if rate.is_finite() { rate.max(0.1) } else { 20.0 }, seed }
    }
}

/// An original that may be retweeted, and how often it was.
struct Original {
    post: Post,
    n_retweets: u64,
}

/// The generator's state: the same seed gives the same posts (ids and times
/// come from the clock).
pub struct DemoGenerator {
    rng: ChaCha8Rng,
    accounts: Vec<Author>,
    last_ms: i64,
    sequence: u64,
    /// The most recent originals, which replies and quotes pick from and
    /// which every retweet may discover.
    originals: VecDeque<Original>,
    /// Sequence number of `originals[0]` since the start.
    first_original: u64,
    /// Originals that left `originals` while recent retweets still point
    /// at them: cascades outlive the recent window.
    cascading: HashMap<u64, Original>,
    /// The original (by sequence number) of each recent retweet, and how
    /// many of them point at each original.
    retweeted: VecDeque<u64>,
    n_references: HashMap<u64, u32>,
    bursting: bool,
    n_bursts: usize,
}

/// Zipf-like rank (P(rank = k) ∝ 1/k, roughly): a log-uniform draw.
fn zipf_index(rng: &mut ChaCha8Rng, n: usize) -> usize {
    let uniform: f64 = rng.random_range(0.0..1.0);
    ((n as f64 + 1.0).powf(uniform) as usize).saturating_sub(1).min(n - 1)
}

impl DemoGenerator {
    /// A generator with its account population drawn from `seed`.
    pub fn new(seed: u64) -> DemoGenerator {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let accounts = (0..N_ACCOUNTS)
            .map(|account_idx| {
                let part = HANDLE_PARTS[rng.random_range(0..HANDLE_PARTS.len())];
                let second = HANDLE_PARTS[rng.random_range(0..HANDLE_PARTS.len())];
                let handle = match rng.random_range(0..3) {
                    0 => format!("{part}_{account_idx}"),
                    1 => format!("{part}{second}{}", account_idx % 100),
                    _ => format!("{part}_{second}_{account_idx}"),
                };
                let name = NAME_PARTS[rng.random_range(0..NAME_PARTS.len())];
                let suffix = NAME_SUFFIXES[rng.random_range(0..NAME_SUFFIXES.len())];
                Author {
                    id: format!("demo-{account_idx}"),
                    handle,
                    name: format!("{name} {suffix}").trim_end().to_owned(),
                    avatar_url: Some(format!("{DEMO_MEDIA_ORIGIN}/avatar/{account_idx}.png")),
                }
            })
            .collect();
        DemoGenerator {
            rng,
            accounts,
            last_ms: 0,
            sequence: 0,
            originals: VecDeque::new(),
            first_original: 0,
            cascading: HashMap::new(),
            retweeted: VecDeque::new(),
            n_references: HashMap::new(),
            bursting: false,
            n_bursts: 0,
        }
    }

    /// Snowflake-like: milliseconds, then a sequence within the millisecond,
    /// so ids sort by time (and never go back if the clock does).
    fn next_id(&mut self, now_ms: i64) -> String {
        if now_ms > self.last_ms {
            self.last_ms = now_ms;
            self.sequence = 0;
        } else {
            self.sequence += 1;
            if self.sequence >= 1 << 22 {
                self.last_ms += 1;
                self.sequence = 0;
            }
        }
        (((self.last_ms.max(0) as u64) << 22) | self.sequence).to_string()
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

    /// The most retweets any remembered original has.
    pub fn max_retweets(&self) -> u64 {
        self.originals.iter().chain(self.cascading.values()).map(|original| original.n_retweets).max().unwrap_or(0)
    }

    /// The next post; `bursting` while a comeback is being announced (each
    /// burst brings the next of the comeback hashtags).
    pub fn next_bundle(&mut self, bursting: bool) -> PostBundle {
        if bursting && !self.bursting {
            self.n_bursts += 1;
        }
        self.bursting = bursting;
        let now = Utc::now();
        let id = self.next_id(now.timestamp_millis());
        let author = self.accounts[zipf_index(&mut self.rng, N_ACCOUNTS)].clone();
        let roll: f64 = self.rng.random_range(0.0..1.0);
        if roll < RETWEET_SHARE && !self.originals.is_empty() {
            return self.retweet(id, author, now);
        }
        let language_idx = self.language();
        let (lang, templates) = TEMPLATES[language_idx];
        let template = templates[self.rng.random_range(0..templates.len())];
        let member = MEMBERS[self.rng.random_range(0..MEMBERS.len())];
        let album = ALBUMS[self.rng.random_range(0..ALBUMS.len())];
        let mut tags = vec![HASHTAGS[zipf_index(&mut self.rng, HASHTAGS.len())]];
        if self.rng.random_bool(0.4) {
            tags.push(HASHTAGS[zipf_index(&mut self.rng, HASHTAGS.len())]);
        }
        if bursting && self.rng.random_bool(0.8) {
            tags.insert(0, BURST_HASHTAGS[(self.n_bursts - 1) % BURST_HASHTAGS.len()]);
        }
        tags.dedup();
        let tag_text: Vec<String> = tags.iter().map(|tag| format!("#{tag}")).collect();
        let mut text = template.replace("{m}", member).replace("{a}", album).replace("{t}", &tag_text.join(" "));
        if bursting && self.rng.random_bool(0.5) {
            text = format!("🚨 BTS COMEBACK 🚨 {text}");
        }
        let mut post = Post {
            lang: Some(lang.to_owned()),
            has_media: self.rng.random_bool(0.25),
            counts: Counts { likes: self.rng.random_range(0..40), ..Counts::default() },
            ..Post::new(id, Source::Demo, author, text, now)
        };
        if post.has_media {
            post.media = demo_photos(&post.id, member);
        }
        let mut quoted = None;
        if !self.originals.is_empty() {
            let parent_idx = self.rng.random_range(0..self.originals.len());
            if roll < RETWEET_SHARE + 0.15 {
                let parent = &self.originals[parent_idx].post;
                post.kind = Kind::Reply;
                post.text = format!("@{} {}", parent.author.handle, post.text);
                post.reply_to = Some(ReplyTo {
                    post_id: Some(parent.id.clone()),
                    author_id: Some(parent.author.id.clone()),
                    handle: Some(parent.author.handle.clone()),
                });
            } else if roll < RETWEET_SHARE + 0.21 {
                let parent = self.originals[parent_idx].post.clone();
                post.kind = Kind::Quote;
                post.quoted_id = Some(parent.id.clone());
                quoted = Some(Box::new(parent));
            }
        }
        self.originals.push_back(Original { post: post.clone(), n_retweets: 0 });
        if self.originals.len() > RECENT_ORIGINALS
            && let Some(oldest) = self.originals.pop_front()
        {
            if self.n_references.contains_key(&self.first_original) {
                self.cascading.insert(self.first_original, oldest);
            }
            self.first_original += 1;
        }
        PostBundle { post, retweeted: None, quoted }
    }

    /// A retweet by preferential attachment: the original is chosen with
    /// probability proportional to its retweets so far + 1. Drawing
    /// uniformly from "every original once, plus every past retweet's
    /// original" is exactly that, with no weights to keep up to date.
    fn retweet(&mut self, id: String, author: Author, now: chrono::DateTime<Utc>) -> PostBundle {
        // New posts are discovered among the newest originals only.
        let n_discoverable = self.originals.len().min(DISCOVERABLE_ORIGINALS);
        let first_discoverable = self.originals.len() - n_discoverable;
        let pick = self.rng.random_range(0..n_discoverable + self.retweeted.len());
        let target = match pick.checked_sub(n_discoverable) {
            None => self.first_original + (first_discoverable + pick) as u64,
            Some(retweet_idx) => self.retweeted[retweet_idx],
        };
        let original = match target.checked_sub(self.first_original) {
            Some(original_idx) => self.originals.get_mut(original_idx as usize),
            None => self.cascading.get_mut(&target),
        };
        // Every referenced original is kept, so this always finds one.
        let Some(original) = original else {
            return self.next_bundle(self.bursting);
        };
        original.n_retweets += 1;
        original.post.counts.retweets = original.n_retweets;
        let original = original.post.clone();
        self.retweeted.push_back(target);
        *self.n_references.entry(target).or_insert(0) += 1;
        if self.retweeted.len() > RECENT_RETWEETS
            && let Some(forgotten) = self.retweeted.pop_front()
            && let Some(n_references) = self.n_references.get_mut(&forgotten)
        {
            *n_references -= 1;
            if *n_references == 0 {
                self.n_references.remove(&forgotten);
                self.cascading.remove(&forgotten);
            }
        }
        // As X shows a retweet; queries look at the original's content.
        let text = format!("RT @{}: {}", original.author.handle, original.text);
        let post = Post {
            kind: Kind::Retweet,
            lang: original.lang.clone(),
            retweeted_id: Some(original.id.clone()),
            has_media: original.has_media,
            ..Post::new(id, Source::Demo, author, text, now)
        };
        PostBundle { post, retweeted: Some(Box::new(original)), quoted: None }
    }
}

/// One to four pictures for a demo post, drawn by the media proxy from the
/// numbers in their addresses (no new random draws, so a seed's stream of
/// posts stays the same). Sizes are known in advance, as from real sources.
fn demo_photos(id: &str, member: &str) -> Vec<Media> {
    let seed = id.bytes().fold(0u64, |hash, byte| hash.wrapping_mul(31).wrapping_add(u64::from(byte)));
    let n_photos = [1, 1, 1, 2, 2, 3, 4][(seed % 7) as usize];
    let sizes = [(1200, 675), (1080, 1080), (900, 1200), (1200, 800)];
    (0..n_photos)
        .map(|photo_idx| {
            let picture = seed.wrapping_add(photo_idx as u64 * 7919) % 100_000;
            let (width, height) = sizes[((seed >> 8) as usize + photo_idx) % sizes.len()];
            Media {
                kind: MediaKind::Photo,
                url: Some(format!("{DEMO_MEDIA_ORIGIN}/photo/{picture}-{width}x{height}.png")),
                preview_url: Some(format!("{DEMO_MEDIA_ORIGIN}/photo/{picture}-{}x{}.png", width / 2, height / 2)),
                width: Some(width),
                height: Some(height),
                alt: Some(format!("Demo picture {} of {n_photos}: {member}", photo_idx + 1)),
            }
        })
        .collect()
}

/// Whether a comeback burst is on `seconds` after the start.
fn is_bursting(seconds: u64) -> bool {
    seconds >= FIRST_BURST_SECONDS && (seconds - FIRST_BURST_SECONDS) % BURST_EVERY_SECONDS < BURST_SECONDS
}

/// The demo record for a bundle.
pub(crate) fn record(bundle: &PostBundle, position: u64) -> RawRecord {
    #[derive(serde::Serialize)]
    struct DeckRecord<'a> {
        deck: &'a PostBundle,
    }
    // Serializing plain structs of strings and numbers cannot fail.
    let payload = serde_json::to_string(&DeckRecord { deck: bundle }).unwrap_or_default();
    RawRecord {
        key: bundle.post.id.clone(),
        origin: Origin { source: "demo".to_owned(), position, checkpoint: None },
        payload,
        received_ms: Some(chrono::Utc::now().timestamp_millis()),
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
        let mut last = started;
        // Posts owed: the rate accrues them, each record pays one off.
        let mut owed = 0.0f64;
        let mut position = 0u64;
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = shutdown.cancelled() => return Ok(()),
            }
            let now = tokio::time::Instant::now();
            let bursting = is_bursting(now.duration_since(started).as_secs());
            let rate = if bursting { self.rate * BURST_FACTOR } else { self.rate };
            owed += now.duration_since(last).as_secs_f64() * rate;
            last = now;
            while owed >= 1.0 {
                owed -= 1.0;
                position += 1;
                let bundle = generator.next_bundle(bursting);
                tokio::select! {
                    sent = out.send(record(&bundle, position)) => if sent.is_err() { return Ok(()) },
                    () = shutdown.cancelled() => return Ok(()),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stream_looks_like_fan_traffic() {
        let mut generator = DemoGenerator::new(7);
        let bundles: Vec<PostBundle> = (0..20_000).map(|_| generator.next_bundle(false)).collect();
        let n_retweets = bundles.iter().filter(|bundle| bundle.post.kind == Kind::Retweet).count();
        assert!((7_000..11_000).contains(&n_retweets), "{n_retweets} retweets");
        assert!(bundles.iter().all(|bundle| bundle.post.is_retweet() == bundle.retweeted.is_some()));
        assert!(bundles.iter().any(|bundle| bundle.post.kind == Kind::Reply));
        assert!(bundles.iter().any(|bundle| bundle.post.kind == Kind::Quote && bundle.quoted.is_some()));
        assert!(bundles.iter().any(|bundle| bundle.post.has_media));
        let languages: std::collections::HashSet<_> =
            bundles.iter().filter_map(|bundle| bundle.post.lang.clone()).collect();
        assert_eq!(languages.len(), 7, "{languages:?}");
        let mentions_bts = bundles
            .iter()
            .filter(|bundle| {
                let text = bundle.retweeted.as_ref().map_or(&bundle.post.text, |original| &original.text);
                text.contains("BTS") || text.contains("방탄소년단")
            })
            .count();
        assert!(mentions_bts * 5 > bundles.len(), "BTS columns stay lively: {mentions_bts}");
        // Cascades: the most retweeted original gets far more than its share.
        let top = generator.max_retweets();

        assert!(top > 200, "the top original has {top} retweets");
        // Given time, the cascades reach thousands of retweets.
        for _ in 0..100_000 {
            generator.next_bundle(false);
        }
        assert!(generator.max_retweets() > 1_000, "{}", generator.max_retweets());
        let ids: Vec<u128> = bundles.iter().map(|bundle| bundle.post.id.parse().unwrap()).collect();
        assert!(ids.windows(2).all(|pair| pair[0] < pair[1]), "ids increase");
    }

    #[test]
    fn hashtags_are_zipf_popular() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut counts = vec![0u32; HASHTAGS.len()];
        for _ in 0..100_000 {
            counts[zipf_index(&mut rng, HASHTAGS.len())] += 1;
        }
        assert!(counts[0] > counts[1] && counts[1] > counts[5] && counts[5] > counts[40]);
        assert!(counts.iter().all(|count| *count > 0), "the long tail shows up");
    }

    #[test]
    fn bursts_bring_a_new_comeback_tag_each_time() {
        let mut generator = DemoGenerator::new(1);
        let first = (0..1000).filter(|_| generator.next_bundle(true).post.text.contains(BURST_HASHTAGS[0])).count();
        assert!(first > 300, "{first}");
        let _ = generator.next_bundle(false);
        let second = (0..1000).filter(|_| generator.next_bundle(true).post.text.contains(BURST_HASHTAGS[1])).count();
        assert!(second > 300, "{second}");
        assert!(
            !is_bursting(0) && is_bursting(FIRST_BURST_SECONDS) && !is_bursting(FIRST_BURST_SECONDS + BURST_SECONDS)
        );
        assert!(is_bursting(FIRST_BURST_SECONDS + BURST_EVERY_SECONDS + 1));
    }
}
