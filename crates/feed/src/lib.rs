//! Live columns. A [`Percolator`] indexes every active column query by the
//! terms a matching post must carry, so matching a new post costs time in
//! proportion to its terms and the candidate queries, not to the number of
//! open columns. The [`Hub`] fans matches out to per-connection bounded
//! queues, one shared serialized post per batch, on a dedicated thread
//! ([`FanOut`]); a column whose reader falls behind is dropped and told to
//! resync.

pub mod hub;
pub mod percolator;

pub use hub::{ColumnMode, ConnectionId, DirectSender, FanOut, FanOutStopped, Hub, HubConfig, Outbound, PostBody};
pub use percolator::{Percolator, SubscriptionId};
