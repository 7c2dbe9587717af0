//! Single-use stream tickets: in memory (embedded) or in Redis with `GETDEL` (distributed).
//! Only the SHA-256 of a ticket is used as the key.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;
use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::error::StoreError;

/// What a redeemed ticket grants: a stream for this member, or an anonymous one.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct TicketGrant {
    /// The member the ticket was issued to; `None` for an anonymous ticket.
    pub user_id: Option<String>,
    /// Issue time, seconds since the epoch.
    pub issued_at: i64,
}

/// Holds tickets until they are taken once or expire.
#[async_trait]
pub trait TicketStore: Send + Sync {
    /// Stores a ticket under the hash of its value for `ttl`.
    async fn put(&self, ticket_hash: &str, grant: &TicketGrant, ttl: Duration) -> Result<(), StoreError>;
    /// Removes and returns the ticket, atomically: a second take finds nothing.
    async fn take(&self, ticket_hash: &str) -> Result<Option<TicketGrant>, StoreError>;
}

/// In-process tickets for the embedded mode.
#[derive(Debug, Default)]
pub struct MemoryTicketStore {
    tickets: Mutex<HashMap<String, (TicketGrant, Instant)>>,
}

/// Above this many tickets, a put first sweeps out the expired ones.
const SWEEP_ABOVE_TICKETS: usize = 1_000;

impl MemoryTicketStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl TicketStore for MemoryTicketStore {
    async fn put(&self, ticket_hash: &str, grant: &TicketGrant, ttl: Duration) -> Result<(), StoreError> {
        let now = Instant::now();
        let mut tickets = self.tickets.lock();
        if tickets.len() > SWEEP_ABOVE_TICKETS {
            tickets.retain(|_, (_, expires_at)| *expires_at > now);
        }
        tickets.insert(ticket_hash.to_owned(), (grant.clone(), now + ttl));
        Ok(())
    }

    async fn take(&self, ticket_hash: &str) -> Result<Option<TicketGrant>, StoreError> {
        let now = Instant::now();
        let taken = self.tickets.lock().remove(ticket_hash);
        Ok(taken.and_then(|(grant, expires_at)| (expires_at > now).then_some(grant)))
    }
}

/// Tickets in Redis, shared by every gateway: `SET … PX` to issue, `GETDEL` to redeem.
#[derive(Clone)]
pub struct RedisTicketStore {
    connection: ConnectionManager,
    prefix: String,
}

impl RedisTicketStore {
    /// Connects to `redis_url`; keys are `{prefix}{ticket hash}`.
    pub async fn connect(redis_url: &str, prefix: &str) -> Result<Self, StoreError> {
        let client = redis::Client::open(redis_url)?;
        let connection = ConnectionManager::new(client).await?;
        Ok(RedisTicketStore { connection, prefix: prefix.to_owned() })
    }
}

#[async_trait]
impl TicketStore for RedisTicketStore {
    async fn put(&self, ticket_hash: &str, grant: &TicketGrant, ttl: Duration) -> Result<(), StoreError> {
        let mut connection = self.connection.clone();
        let value = serde_json::to_string(grant).map_err(|error| StoreError::Corrupt(error.to_string()))?;
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let options = redis::SetOptions::default().with_expiration(redis::SetExpiry::PX(ttl_ms));
        let () = connection.set_options(format!("{}{ticket_hash}", self.prefix), value, options).await?;
        Ok(())
    }

    async fn take(&self, ticket_hash: &str) -> Result<Option<TicketGrant>, StoreError> {
        let mut connection = self.connection.clone();
        let value: Option<String> =
            redis::cmd("GETDEL").arg(format!("{}{ticket_hash}", self.prefix)).query_async(&mut connection).await?;
        value
            .map(|text| serde_json::from_str(&text).map_err(|error| StoreError::Corrupt(error.to_string())))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn single_use_and_expiry() {
        let store = MemoryTicketStore::new();
        let grant = TicketGrant { user_id: Some("u1".into()), issued_at: 1 };
        store.put("a", &grant, Duration::from_secs(30)).await.unwrap();
        store.put("b", &grant, Duration::from_secs(30)).await.unwrap();
        assert_eq!(store.take("a").await.unwrap(), Some(grant.clone()));
        assert_eq!(store.take("a").await.unwrap(), None);
        tokio::time::advance(Duration::from_secs(31)).await;
        assert_eq!(store.take("b").await.unwrap(), None);
    }
}
