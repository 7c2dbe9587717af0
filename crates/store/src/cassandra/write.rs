//! Applying a batch: reads that tell new posts from re-deliveries, then the
//! writes in phases (index rows, then `posts` rows, then checkpoints).

use super::*;

/// Drops the posts whose id is too long to store (counted and logged), and
/// the deletes of such ids (never stored, so nothing to delete).
fn refuse_over_long_ids(events: &mut Vec<PostEvent>) {
    events.retain_mut(|event| match event {
        PostEvent::Upsert(bundle) => {
            if !crate::keys::id_fits(&bundle.post.id) {
                crate::refuse_post(&bundle.post.id);
                return false;
            }
            for embedded in [&mut bundle.retweeted, &mut bundle.quoted] {
                if embedded.as_ref().is_some_and(|post| !crate::keys::id_fits(&post.id))
                    && let Some(post) = embedded.take()
                {
                    crate::refuse_post(&post.id);
                }
            }
            true
        }
        PostEvent::Delete { id } => crate::keys::id_fits(id),
    });
}

fn encode_post(post: &Post) -> Result<Vec<u8>, StoreError> {
    crate::codec::encode(post).map_err(|error| StoreError::Engine(format!("encode post {}: {error}", post.id)))
}

/// One write of a batch, run with others of its phase concurrently.
enum Write {
    /// Postings of one partition `(term, bucket)`, all added or all removed:
    /// one unlogged batch, which Cassandra applies as a single mutation.
    Postings {
        term: String,
        bucket: i64,
        cursors: Vec<Vec<u8>>,
        present: bool,
    },
    TermBucket {
        term: String,
        bucket: i64,
    },
    Tombstone {
        id: String,
    },
    Retweet {
        original_id: String,
        retweet_id: String,
        present: bool,
    },
    Post {
        id: String,
        body: Option<Vec<u8>>,
    },
    RetweetsSeen {
        id: String,
        count: i64,
    },
    Checkpoint {
        source: String,
        checkpoint: String,
    },
}

/// The batch being planned: the final state of every row it touches, so that
/// later events in the batch see earlier ones and a row written then removed
/// in the same batch is written once, as removed.
#[derive(Default)]
struct Pending {
    /// Every post read or written: `None` = absent (or deleted in this batch).
    posts: HashMap<String, Option<Post>>,
    /// `retweets_seen` as stored, per post read.
    retweets_seen: HashMap<String, i64>,
    /// Tombstoned ids, stored before or in this batch.
    tombstoned: HashSet<String>,
    /// Tombstones this batch writes.
    tombstone_writes: HashSet<String>,
    postings: HashMap<(String, Vec<u8>), bool>,
    posts_written: HashMap<String, bool>,
    retweets: HashMap<(String, String), bool>,
    /// Originals whose retweet set changed: recount after the writes.
    recount: HashSet<String>,
    inserted_ids: Vec<String>,
    updated_ids: Vec<String>,
    deleted: Vec<StoredPost>,
    n_new_rows: i64,
    n_removed_rows: i64,
}

impl Inner {
    /// Makes sure `pending` knows the stored state of `ids` (one round of
    /// concurrent reads for those it does not know yet).
    async fn prefetch(&self, pending: &mut Pending, ids: impl IntoIterator<Item = String>) -> Result<(), StoreError> {
        let mut missing: Vec<String> = ids.into_iter().filter(|id| !pending.posts.contains_key(id)).collect();
        missing.sort();
        missing.dedup();
        if missing.is_empty() {
            return Ok(());
        }
        let rows = self
            .run_all(missing.into_iter().map(|id| async move {
                let ((post, retweets_seen), tombstoned) =
                    futures::try_join!(self.read_post(&id), self.is_tombstoned(&id))?;
                Ok((id, post, retweets_seen, tombstoned))
            }))
            .await?;
        for (id, post, retweets_seen, tombstoned) in rows {
            if tombstoned {
                pending.tombstoned.insert(id.clone());
            }
            pending.retweets_seen.insert(id.clone(), retweets_seen);
            pending.posts.insert(id, post);
        }
        Ok(())
    }

    async fn known(&self, pending: &mut Pending, id: &str) -> Result<Option<Post>, StoreError> {
        self.prefetch(pending, [id.to_owned()]).await?;
        Ok(pending.posts.get(id).cloned().flatten())
    }

    async fn resolve(&self, pending: &mut Pending, post: Post) -> Result<StoredPost, StoreError> {
        let retweeted = match &post.retweeted_id {
            Some(id) => self.known(pending, id).await?.map(Box::new),
            None => None,
        };
        let quoted = match &post.quoted_id {
            Some(id) => self.known(pending, id).await?.map(Box::new),
            None => None,
        };
        Ok(StoredPost { post, retweeted, quoted })
    }

    /// The partition-key form of each index term (over-long terms hashed).
    fn index_terms(stored: &StoredPost) -> Vec<String> {
        Doc::new(stored).terms().iter().map(|term| crate::keys::term_key(term).into_owned()).collect()
    }

    pub(super) async fn apply(&self, mut batch: WriteBatch) -> Result<Applied, StoreError> {
        let mut pending = Pending::default();
        refuse_over_long_ids(&mut batch.events);
        // Read everything the batch names in one concurrent round.
        let mut named = Vec::new();
        for event in &batch.events {
            match event {
                PostEvent::Upsert(PostBundle { post, retweeted, quoted }) => {
                    for post in [Some(post), retweeted.as_deref(), quoted.as_deref()].into_iter().flatten() {
                        named.push(post.id.clone());
                        named.extend(post.retweeted_id.iter().cloned());
                        named.extend(post.quoted_id.iter().cloned());
                    }
                }
                PostEvent::Delete { id } => named.push(id.clone()),
            }
        }
        self.prefetch(&mut pending, named).await?;

        for event in batch.events {
            match event {
                PostEvent::Upsert(PostBundle { post, retweeted, quoted }) => {
                    for embedded in [retweeted, quoted].into_iter().flatten() {
                        self.upsert_one(&mut pending, *embedded).await?;
                    }
                    // An original whose id cannot be stored is never counted.
                    let retweet_of = (post.kind == Kind::Retweet)
                        .then(|| post.retweeted_id.clone())
                        .flatten()
                        .filter(|original_id| crate::keys::id_fits(original_id));
                    let retweet_id = post.id.clone();
                    self.upsert_one(&mut pending, post).await?;
                    // Every stored retweet is in its original's set, re-delivered
                    // ones too: a crash may have come between the retweet's
                    // row and the original's count, and a recount heals it.
                    let stored = matches!(pending.posts.get(&retweet_id), Some(Some(_)));
                    if let (true, Some(original_id)) = (stored, retweet_of) {
                        pending.retweets.insert((original_id.clone(), retweet_id), true);
                        pending.recount.insert(original_id);
                    }
                }
                PostEvent::Delete { id } => self.delete_one(&mut pending, &id).await?,
            }
        }

        // Phase 1: tombstones, index rows and retweet rows. Phase 2: the post
        // rows, which mark posts as stored (or gone) only once their index
        // rows are. Phase 3: counts and checkpoints.
        let mut first = Vec::new();
        for id in &pending.tombstone_writes {
            first.push(Write::Tombstone { id: id.clone() });
        }
        let mut new_buckets = Vec::new();
        let mut partitions: HashMap<(&str, i64, bool), Vec<Vec<u8>>> = HashMap::new();
        for ((term, cursor), present) in &pending.postings {
            let bucket = Cursor::from_bytes(cursor)
                .map(|cursor| self.bucket_of(cursor.created_ms()))
                .map_err(|_| corrupt(term, "bad cursor"))?;
            if *present {
                new_buckets.push((term.clone(), bucket));
            }
            partitions.entry((term.as_str(), bucket, *present)).or_default().push(cursor.clone());
        }
        for ((term, bucket, present), cursors) in partitions {
            for chunk in cursors.chunks(POSTINGS_PER_BATCH) {
                first.push(Write::Postings { term: term.to_owned(), bucket, cursors: chunk.to_vec(), present });
            }
        }
        new_buckets.sort();
        new_buckets.dedup();
        {
            let known = self.known_buckets.lock().map_err(|_| StoreError::Task("bucket memory poisoned".into()))?;
            new_buckets.retain(|pair| !known.contains(pair));
        }
        for (term, bucket) in &new_buckets {
            first.push(Write::TermBucket { term: term.clone(), bucket: *bucket });
        }
        for ((original_id, retweet_id), present) in &pending.retweets {
            first.push(Write::Retweet {
                original_id: original_id.clone(),
                retweet_id: retweet_id.clone(),
                present: *present,
            });
        }
        self.run_all(first.into_iter().map(|write| self.write(write))).await?;
        {
            let mut known = self.known_buckets.lock().map_err(|_| StoreError::Task("bucket memory poisoned".into()))?;
            if known.len() + new_buckets.len() > KNOWN_BUCKETS_CAPACITY {
                known.clear();
            }
            known.extend(new_buckets);
        }

        let mut second = Vec::new();
        for (id, present) in &pending.posts_written {
            let body = match (present, pending.posts.get(id)) {
                (true, Some(Some(post))) => Some(encode_post(post)?),
                _ => None,
            };
            second.push(Write::Post { id: id.clone(), body });
        }
        self.run_all(second.into_iter().map(|write| self.write(write))).await?;

        // Retweet counts: the size of each original's retweet set, counted
        // after this batch's rows were written (idempotent under re-delivery).
        let recount: Vec<String> = pending.recount.iter().cloned().collect();
        let counts = self
            .run_all(recount.into_iter().map(|original_id| async move {
                let result = self
                    .session
                    .execute_unpaged(&self.statements.count_retweets, (&original_id,))
                    .await
                    .map_err(engine)?;
                let (count,) = result.into_rows_result().map_err(engine)?.single_row::<(i64,)>().map_err(engine)?;
                Ok((original_id, count))
            }))
            .await?;
        let mut third = Vec::new();
        for (original_id, count) in counts {
            if pending.retweets_seen.get(&original_id).copied().unwrap_or(0) == count {
                continue;
            }
            third.push(Write::RetweetsSeen { id: original_id.clone(), count });
            if let Some(Some(original)) = pending.posts.get_mut(&original_id) {
                let visible = original.counts.retweets.max(u64::try_from(count).unwrap_or(0));
                if visible != original.counts.retweets {
                    original.counts.retweets = visible;
                    pending.updated_ids.push(original_id.clone());
                }
            }
        }
        let mut last_checkpoint: HashMap<&str, &str> = HashMap::new();
        for (source, checkpoint) in &batch.checkpoints {
            last_checkpoint.insert(source, checkpoint);
        }
        for (source, checkpoint) in last_checkpoint {
            third.push(Write::Checkpoint { source: source.to_owned(), checkpoint: checkpoint.to_owned() });
        }
        self.run_all(third.into_iter().map(|write| self.write(write))).await?;
        let delta = pending.n_new_rows - pending.n_removed_rows;
        if delta != 0 {
            // Approximate by design: a crash between the post rows and this
            // increment loses it (a counter must not be retried).
            self.session.execute_unpaged(&self.statements.add_stat, (Counter(delta), "posts")).await.map_err(engine)?;
        }

        // What changed, resolved from the state just written.
        let deleted_ids: HashSet<String> = pending.deleted.iter().map(|post| post.post.id.clone()).collect();
        let mut applied = Applied::default();
        let mut seen = HashSet::new();
        let inserted_ids = std::mem::take(&mut pending.inserted_ids);
        let updated_ids = std::mem::take(&mut pending.updated_ids);
        for (ids, is_insert) in [(inserted_ids, true), (updated_ids, false)] {
            for id in ids {
                if deleted_ids.contains(&id) || !seen.insert(id.clone()) {
                    continue;
                }
                let Some(Some(post)) = pending.posts.get(&id).cloned() else {
                    continue;
                };
                let stored = self.resolve(&mut pending, post).await?;
                if is_insert {
                    applied.inserted.push(stored);
                } else {
                    applied.updated.push(stored);
                }
            }
        }
        applied.deleted = std::mem::take(&mut pending.deleted);
        Ok(applied)
    }

    /// Plans storing one post (nothing for a deleted id or an unchanged post).
    async fn upsert_one(&self, pending: &mut Pending, mut post: Post) -> Result<(), StoreError> {
        if pending.tombstoned.contains(&post.id) {
            return Ok(());
        }
        let existing = self.known(pending, &post.id).await?;
        let seen_retweets = u64::try_from(pending.retweets_seen.get(&post.id).copied().unwrap_or(0)).unwrap_or(0);
        match existing {
            None => {
                post.counts.retweets = post.counts.retweets.max(seen_retweets);
                let stored = self.resolve(pending, post.clone()).await?;
                let cursor = post.cursor().as_bytes().to_vec();
                for term in Inner::index_terms(&stored) {
                    pending.postings.insert((term, cursor.clone()), true);
                }
                pending.posts_written.insert(post.id.clone(), true);
                pending.inserted_ids.push(post.id.clone());
                pending.n_new_rows += 1;
                pending.posts.insert(post.id.clone(), Some(post));
                Ok(())
            }
            Some(old) => {
                let (merged, content_changed) = match crate::merge_redelivery(&old, post, seen_retweets) {
                    crate::Merge::Unchanged => return Ok(()),
                    crate::Merge::Counts(merged) => (merged, false),
                    crate::Merge::Content(merged) => (merged, true),
                };
                if content_changed {
                    let old_stored = self.resolve(pending, old.clone()).await?;
                    let new_stored = self.resolve(pending, merged.clone()).await?;
                    let old_cursor = old.cursor().as_bytes().to_vec();
                    let new_cursor = merged.cursor().as_bytes().to_vec();
                    let new_rows: HashSet<(String, Vec<u8>)> =
                        Inner::index_terms(&new_stored).into_iter().map(|term| (term, new_cursor.clone())).collect();
                    for term in Inner::index_terms(&old_stored) {
                        let row = (term, old_cursor.clone());
                        if !new_rows.contains(&row) {
                            pending.postings.insert(row, false);
                        }
                    }
                    for row in new_rows {
                        pending.postings.insert(row, true);
                    }
                }
                pending.posts_written.insert(merged.id.clone(), true);
                pending.updated_ids.push(merged.id.clone());
                pending.posts.insert(merged.id.clone(), Some(merged));
                Ok(())
            }
        }
    }

    /// Plans deleting one post, its index rows and its retweets.
    async fn delete_one(&self, pending: &mut Pending, id: &str) -> Result<(), StoreError> {
        // Boxed: deleting an original recurses into its retweets.
        Box::pin(async move {
            let post = self.known(pending, id).await?;
            pending.tombstoned.insert(id.to_owned());
            pending.tombstone_writes.insert(id.to_owned());
            let Some(post) = post else {
                pending.posts.insert(id.to_owned(), None);
                return Ok(());
            };
            let stored = self.resolve(pending, post.clone()).await?;
            let cursor = post.cursor().as_bytes().to_vec();
            for term in Inner::index_terms(&stored) {
                pending.postings.insert((term, cursor.clone()), false);
            }
            // A post stored before this batch leaves a row to remove; one
            // inserted in this batch was never written.
            if pending.posts_written.get(id) == Some(&true)
                && pending.inserted_ids.iter().any(|inserted| inserted == id)
            {
                pending.n_new_rows -= 1;
            } else {
                pending.n_removed_rows += 1;
            }
            pending.posts_written.insert(id.to_owned(), false);
            pending.posts.insert(id.to_owned(), None);

            // A retweet that leaves takes itself off the original's set.
            if let (Kind::Retweet, Some(original_id)) = (post.kind, &post.retweeted_id)
                && crate::keys::id_fits(original_id)
            {
                pending.retweets.insert((original_id.clone(), id.to_owned()), false);
                pending.recount.insert(original_id.clone());
            }
            pending.deleted.push(stored);

            // Retweets of a deleted post go with it: stored ones and this batch's.
            let result = self.session.execute_unpaged(&self.statements.select_retweets, (id,)).await.map_err(engine)?;
            let mut retweet_ids: Vec<String> = result
                .into_rows_result()
                .map_err(engine)?
                .rows::<(String,)>()
                .map_err(engine)?
                .map(|row| row.map(|(retweet_id,)| retweet_id))
                .collect::<Result<_, _>>()
                .map_err(engine)?;
            retweet_ids.extend(
                pending
                    .retweets
                    .iter()
                    .filter(|((original_id, _), present)| original_id == id && **present)
                    .map(|((_, retweet_id), _)| retweet_id.clone()),
            );
            retweet_ids.sort();
            retweet_ids.dedup();
            for retweet_id in retweet_ids {
                if pending.posts.get(&retweet_id) != Some(&None) {
                    self.delete_one(pending, &retweet_id).await?;
                }
            }
            Ok(())
        })
        .await
    }

    async fn write(&self, write: Write) -> Result<(), StoreError> {
        let statements = &self.statements;
        let session = &self.session;
        let result = match write {
            Write::Postings { term, bucket, cursors, present } => {
                let statement = if present { &statements.insert_posting } else { &statements.delete_posting };
                if let [cursor] = cursors.as_slice() {
                    session.execute_unpaged(statement, (&term, bucket, cursor)).await
                } else {
                    let mut batch = Batch::new(BatchType::Unlogged);
                    for _ in &cursors {
                        batch.append_statement(statement.clone());
                    }
                    // Replaying the same rows is harmless: the batch may be retried.
                    batch.set_is_idempotent(true);
                    let rows: Vec<(&str, i64, &[u8])> =
                        cursors.iter().map(|cursor| (term.as_str(), bucket, cursor.as_slice())).collect();
                    session.batch(&batch, rows).await
                }
            }
            Write::TermBucket { term, bucket } => {
                session.execute_unpaged(&statements.insert_term_bucket, (term, bucket)).await
            }
            Write::Tombstone { id } => session.execute_unpaged(&statements.insert_tombstone, (id,)).await,
            Write::Retweet { original_id, retweet_id, present: true } => {
                session.execute_unpaged(&statements.insert_retweet, (original_id, retweet_id)).await
            }
            Write::Retweet { original_id, retweet_id, present: false } => {
                session.execute_unpaged(&statements.delete_retweet, (original_id, retweet_id)).await
            }
            Write::Post { id, body: Some(body) } => session.execute_unpaged(&statements.insert_post, (id, body)).await,
            Write::Post { id, body: None } => session.execute_unpaged(&statements.delete_post, (id,)).await,
            Write::RetweetsSeen { id, count } => {
                session.execute_unpaged(&statements.update_retweets_seen, (count, id)).await
            }
            Write::Checkpoint { source, checkpoint } => {
                session.execute_unpaged(&statements.insert_checkpoint, (source, checkpoint)).await
            }
        };
        result.map(|_| ()).map_err(engine)
    }
}
