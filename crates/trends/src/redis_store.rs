//! The Redis trend store: sorted sets per one-minute bucket, written by one
//! Lua script per batch (one round trip) and merged per window at read time
//! by another, so that Redis answers exactly what [`crate::EmbeddedTrends`]
//! answers.
//!
//! Key layout (all under `{prefix}:`, every key expires on its own):
//! - `newest`: the newest event time seen, in ms.
//! - `seen:{post}`: `1` while a post is counted, `0` once removed (dedupe and
//!   tombstone).
//! - `del:{post}`: a deleted original (its retweets no longer rank it).
//! - `use:{bucket}`: folded tag → posts.
//! - `form:{bucket}:{tag}`: display form → posts.
//! - `acc:{bucket}:{tag}`: account → posts (its cardinality is the distinct
//!   accounts; unions over buckets give distinct accounts over a window).
//! - `rt:{bucket}`: original post id → retweets.
//! - `tmp:*`: scratch keys of the read script, deleted before it returns.
//!
//! The scripts touch keys they do not declare, so this needs a standalone
//! Redis (or one key prefix per hash slot), not Redis Cluster.

use redis::aio::ConnectionManager;

use crate::{
    BUCKET_MS, HashtagCount, RETENTION_BUCKETS, Ranking, RetweetCount, TRENDING_CANDIDATES, TRENDING_MIN_ACCOUNTS,
    TrendEvent, TrendStore, TrendingTag, TrendsError, Window, bucket_of, trending_order, velocity_score,
};

/// Keys live this long (wall clock): the retention horizon plus an hour.
const KEY_TTL_SECONDS: i64 = (RETENTION_BUCKETS + 60) * BUCKET_MS / 1000;

/// Events per script call: bounds how long one call holds Redis.
const EVENTS_PER_CALL: usize = 2_000;

/// Shared by the write scripts: decodes the events in `ARGV` from index 4 and
/// calls `handle` for each, with the newest event time kept up to date.
const WRITE_PRELUDE: &str = r#"
local p = ARGV[1]
local ttl = tonumber(ARGV[2])
local retention = tonumber(ARGV[3])
local newest_text = redis.call('GET', p .. 'newest')
local newest = nil
if newest_text then newest = tonumber(newest_text) end
local expiring = {}
local function bump(key, member, delta)
  local after = tonumber(redis.call('ZINCRBY', key, delta, member))
  if after <= 0 then redis.call('ZREM', key, member) end
  if not expiring[key] then
    redis.call('EXPIRE', key, ttl)
    expiring[key] = true
  end
end
local function positive(key, member)
  local score = redis.call('ZSCORE', key, member)
  return score and tonumber(score) > 0
end
local function in_horizon(bucket)
  return newest == nil or bucket > math.floor(newest / 60000) - retention
end
local function each_event(handle)
  local i = 4
  while i <= #ARGV do
    local n = tonumber(ARGV[i + 5])
    local tags = {}
    for j = 0, n - 1 do
      tags[#tags + 1] = { ARGV[i + 6 + 2 * j], ARGV[i + 7 + 2 * j] }
    end
    handle(ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], tags)
    i = i + 6 + 2 * n
  end
end
"#;

const RECORD_BODY: &str = r#"
each_event(function(id, author, created_text, bucket, original, tags)
  local created = tonumber(created_text)
  if newest == nil or created > newest then
    newest = created
    redis.call('SET', p .. 'newest', created_text, 'EX', ttl)
  end
  if not in_horizon(tonumber(bucket)) then return end
  if not redis.call('SET', p .. 'seen:' .. id, '1', 'NX', 'EX', ttl) then return end
  for _, tag in ipairs(tags) do
    bump(p .. 'use:' .. bucket, tag[1], 1)
    bump(p .. 'form:' .. bucket .. ':' .. tag[1], tag[2], 1)
    bump(p .. 'acc:' .. bucket .. ':' .. tag[1], author, 1)
  end
  if original ~= '' then bump(p .. 'rt:' .. bucket, original, 1) end
end)
return 1
"#;

const REMOVE_BODY: &str = r#"
each_event(function(id, author, created_text, bucket, original, tags)
  if original == '' then
    redis.call('SET', p .. 'del:' .. id, '1', 'EX', ttl)
  end
  if not in_horizon(tonumber(bucket)) then return end
  local before = redis.call('SET', p .. 'seen:' .. id, '0', 'EX', ttl, 'GET')
  if before ~= '1' then return end
  -- Subtract only what the bucket holds, as the embedded store does.
  for _, tag in ipairs(tags) do
    local use_key = p .. 'use:' .. bucket
    local form_key = p .. 'form:' .. bucket .. ':' .. tag[1]
    local acc_key = p .. 'acc:' .. bucket .. ':' .. tag[1]
    if positive(use_key, tag[1]) and positive(form_key, tag[2]) and positive(acc_key, author) then
      bump(use_key, tag[1], -1)
      bump(form_key, tag[2], -1)
      bump(acc_key, author, -1)
    end
  end
  if original ~= '' and positive(p .. 'rt:' .. bucket, original) then
    bump(p .. 'rt:' .. bucket, original, -1)
  end
end)
return 1
"#;

/// ARGV: prefix, window buckets, baseline buckets, limit, candidates, min
/// accounts. Returns `{newest, {display, count}…, {key, display, observed,
/// baseline}…, {post, count}…}` (flat lists).
const RANKING_SCRIPT: &str = r#"
local p = ARGV[1]
local length = tonumber(ARGV[2])
local baseline_length = tonumber(ARGV[3])
local limit = tonumber(ARGV[4])
local candidates = tonumber(ARGV[5])
local min_accounts = tonumber(ARGV[6])
local newest_text = redis.call('GET', p .. 'newest')
if not newest_text then return { '', {}, {}, {} } end
local newest_bucket = math.floor(tonumber(newest_text) / 60000)

local function keys(head, tail, from, to)
  local list = {}
  for b = from, to do list[#list + 1] = head .. b .. tail end
  return list
end

-- Unions sorted sets into `dest`, dropping members whose sum is not positive.
local function union(dest, list)
  redis.call('DEL', dest)
  if #list == 0 then return end
  redis.call('ZUNIONSTORE', dest, #list, unpack(list))
  redis.call('ZREMRANGEBYSCORE', dest, '-inf', 0)
end

-- The first `k` members by score descending, ties by member ascending
-- (byte order), skipping members for which `skip_prefix .. member` exists.
local function top(key, k, skip_prefix)
  local out = {}
  local n = 0
  local max = '+inf'
  while n < k do
    local head = redis.call('ZREVRANGEBYSCORE', key, max, '-inf', 'WITHSCORES', 'LIMIT', 0, 1)
    if #head == 0 then break end
    local score = head[2]
    local offset = 0
    while n < k do
      local page = redis.call('ZRANGEBYSCORE', key, score, score, 'LIMIT', offset, 256)
      if #page == 0 then break end
      for _, member in ipairs(page) do
        if n < k and (skip_prefix == nil or redis.call('EXISTS', skip_prefix .. member) == 0) then
          out[#out + 1] = member
          out[#out + 1] = score
          n = n + 1
        end
      end
      offset = offset + #page
    end
    max = '(' .. score
  end
  return out
end

local first = newest_bucket - length + 1
local tmp = p .. 'tmp:'
union(tmp .. 'use', keys(p .. 'use:', '', first, newest_bucket))
local tags = top(tmp .. 'use', math.max(limit, candidates), nil)

local function display(tag)
  union(tmp .. 'form', keys(p .. 'form:', ':' .. tag, first, newest_bucket))
  local best = top(tmp .. 'form', 1, nil)
  return best[1] or tag
end

local hashtags = {}
local scored = {}
for i = 1, #tags, 2 do
  local tag = tags[i]
  local rank = (i + 1) / 2
  local shown = nil
  if rank <= limit then
    shown = display(tag)
    hashtags[#hashtags + 1] = shown
    hashtags[#hashtags + 1] = tags[i + 1]
  end
  if rank <= candidates then
    union(tmp .. 'acc', keys(p .. 'acc:', ':' .. tag, first, newest_bucket))
    local observed = redis.call('ZCARD', tmp .. 'acc')
    if observed >= min_accounts then
      -- The baseline: distinct accounts in each window-long sub-window, summed.
      local baseline = 0
      for sub_window = 1, baseline_length / length do
        local from = first - sub_window * length
        union(tmp .. 'acc', keys(p .. 'acc:', ':' .. tag, from, from + length - 1))
        baseline = baseline + redis.call('ZCARD', tmp .. 'acc')
      end
      scored[#scored + 1] = tag
      scored[#scored + 1] = shown or display(tag)
      scored[#scored + 1] = tostring(observed)
      scored[#scored + 1] = tostring(baseline)
    end
  end
end

union(tmp .. 'rt', keys(p .. 'rt:', '', first, newest_bucket))
local retweeted = top(tmp .. 'rt', limit, p .. 'del:')
redis.call('DEL', tmp .. 'use', tmp .. 'form', tmp .. 'acc', tmp .. 'rt')
return { newest_text, hashtags, scored, retweeted }
"#;

/// The Redis [`TrendStore`]. Redis holds only what can be rebuilt: re-record
/// the stored posts of the last [`crate::RETENTION_MS`] into a fresh prefix
/// to rebuild it.
pub struct RedisTrends {
    connection: ConnectionManager,
    prefix: String,
    record_script: redis::Script,
    remove_script: redis::Script,
    ranking_script: redis::Script,
}

/// How long one Redis command (or connect) may take, a reconnect included.
/// A stopped Redis refuses connections at once, so this bounds only a Redis
/// that is up but slow: one call of [`EVENTS_PER_CALL`] events on a loaded
/// 2-core machine took over 2 s once (CI, 2026-12-01).
const COMMAND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Runs one Redis call with [`COMMAND_TIMEOUT`] over all of it: the
/// connection manager's own timeouts do not cover a command that waits for
/// its reconnect, and a processor must never wait on Redis for ever.
async fn bounded<T>(call: impl std::future::Future<Output = redis::RedisResult<T>>) -> Result<T, TrendsError> {
    match tokio::time::timeout(COMMAND_TIMEOUT + COMMAND_TIMEOUT, call).await {
        Ok(result) => Ok(result?),
        Err(_) => Err(TrendsError::Timeout(COMMAND_TIMEOUT + COMMAND_TIMEOUT)),
    }
}

impl RedisTrends {
    /// Connects to `url` (`redis://host:port/db`); every key is put under
    /// `key_prefix` followed by `:`.
    pub async fn connect(url: &str, key_prefix: &str) -> Result<RedisTrends, TrendsError> {
        let client = redis::Client::open(url)?;
        // Bounded answers and connects, and one reconnect attempt per
        // failure: the caller (the processor's in-place retry) owns the
        // backoff. Without them a command in flight when Redis restarts
        // waits behind the manager's own reconnect loop for many seconds.
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_response_timeout(COMMAND_TIMEOUT)
            .set_connection_timeout(COMMAND_TIMEOUT)
            .set_number_of_retries(1)
            .set_max_delay(500);
        let connection = ConnectionManager::new_with_config(client, config).await?;
        Ok(RedisTrends {
            connection,
            prefix: format!("{key_prefix}:"),
            record_script: redis::Script::new(&format!("{WRITE_PRELUDE}{RECORD_BODY}")),
            remove_script: redis::Script::new(&format!("{WRITE_PRELUDE}{REMOVE_BODY}")),
            ranking_script: redis::Script::new(RANKING_SCRIPT),
        })
    }

    async fn write(&self, script: &redis::Script, events: &[TrendEvent]) -> Result<(), TrendsError> {
        let mut connection = self.connection.clone();
        for chunk in events.chunks(EVENTS_PER_CALL) {
            let mut invocation = script.prepare_invoke();
            invocation.arg(&self.prefix).arg(KEY_TTL_SECONDS).arg(RETENTION_BUCKETS);
            for event in chunk {
                let uses = event.tag_uses();
                invocation
                    .arg(&event.post_id)
                    .arg(&event.author_id)
                    .arg(event.created_ms)
                    .arg(bucket_of(event.created_ms))
                    .arg(event.retweeted_id.as_deref().unwrap_or(""))
                    .arg(uses.len());
                for (key, display) in &uses {
                    invocation.arg(key).arg(*display);
                }
            }
            let _: i64 = bounded(invocation.invoke_async(&mut connection)).await?;
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl TrendStore for RedisTrends {
    async fn ping(&self) -> Result<(), TrendsError> {
        let mut connection = self.connection.clone();
        let _: String = bounded(redis::cmd("PING").query_async(&mut connection)).await?;
        Ok(())
    }

    async fn record(&self, events: &[TrendEvent]) -> Result<(), TrendsError> {
        self.write(&self.record_script, events).await
    }

    async fn remove(&self, events: &[TrendEvent]) -> Result<(), TrendsError> {
        self.write(&self.remove_script, events).await
    }

    async fn ranking(&self, window: Window, limit: usize) -> Result<Ranking, TrendsError> {
        let mut connection = self.connection.clone();
        let mut invocation = self.ranking_script.prepare_invoke();
        invocation
            .arg(&self.prefix)
            .arg(window.buckets())
            .arg(window.baseline_buckets())
            .arg(limit)
            .arg(TRENDING_CANDIDATES)
            .arg(TRENDING_MIN_ACCOUNTS);
        let (newest, hashtags, scored, retweeted): (String, Vec<String>, Vec<String>, Vec<String>) =
            bounded(invocation.invoke_async(&mut connection)).await?;
        if newest.is_empty() {
            return Ok(Ranking::empty(window));
        }
        let ends_at_ms = parse_number(&newest)? as i64;

        let hashtags = hashtags
            .chunks(2)
            .map(|pair| match pair {
                [tag, count] => Ok(HashtagCount { tag: tag.clone(), count: parse_number(count)? as u64 }),
                _ => Err(TrendsError::Protocol("odd hashtag list".into())),
            })
            .collect::<Result<Vec<_>, _>>()?;

        let mut trending = Vec::new();
        for fields in scored.chunks(4) {
            let [key, display, observed, baseline] = fields else {
                return Err(TrendsError::Protocol("short trending entry".into()));
            };
            let observed = parse_number(observed)? as u64;
            let baseline = parse_number(baseline)? as u64;
            let (score, expected) = velocity_score(window, observed, baseline);
            if score > 0.0 {
                trending.push((key.clone(), display.clone(), score, observed, expected));
            }
        }
        trending.sort_by(|a, b| trending_order((a.2, a.3, &a.0), (b.2, b.3, &b.0)));
        trending.truncate(limit);

        let top_retweeted = retweeted
            .chunks(2)
            .map(|pair| match pair {
                [post_id, count] => Ok(RetweetCount { post_id: post_id.clone(), count: parse_number(count)? as u64 }),
                _ => Err(TrendsError::Protocol("odd retweet list".into())),
            })
            .collect::<Result<Vec<_>, _>>()?;

        Ok(Ranking {
            window,
            ends_at_ms,
            hashtags,
            trending: trending
                .into_iter()
                .map(|(_, tag, score, accounts, expected)| TrendingTag { tag, score, accounts, expected })
                .collect(),
            top_retweeted,
        })
    }
}

/// Parses a number Redis printed (counts come back as scores, e.g. `3`).
fn parse_number(text: &str) -> Result<f64, TrendsError> {
    text.parse::<f64>().map_err(|_| TrendsError::Protocol(format!("not a number: {text:?}")))
}
