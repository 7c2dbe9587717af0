//! Timeline reads: per conjunction, walk the rarest term's postings newest
//! first, bucket by bucket, within the read's work budget.

use super::*;

impl Inner {
    /// A page of matches, newest first, within the read's work budget (one
    /// unit per posting read and per post loaded); out of budget, the page
    /// ends after the last candidate decided, with `next` there.
    pub(super) async fn timeline(
        &self,
        query: &Query,
        range: &Range,
        limit: usize,
        work: &mut Work,
    ) -> Result<Page, StoreError> {
        let limit = limit.max(1);
        let mut primaries: Vec<Term> = match query.plan() {
            Plan::All => vec![Term::all()],
            // The plan puts the rarest kind of term first in each conjunction;
            // the other terms are left to the matcher.
            Plan::AnyOf(conjunctions) => {
                conjunctions.into_iter().filter_map(|terms| terms.into_iter().next()).collect()
            }
        };
        primaries.sort();
        primaries.dedup();
        if primaries.is_empty() {
            primaries.push(Term::all());
        }
        let mut streams: Vec<TermScan> =
            primaries.iter().map(|term| TermScan::new(self, &crate::keys::term_key(term), range)).collect();
        let mut heads: Vec<Option<Vec<u8>>> = Vec::with_capacity(streams.len());
        for stream in &mut streams {
            heads.push(stream.next(self).await?);
        }

        let mut page = Page::default();
        let mut examined = 0usize;
        let mut last_decided: Option<Cursor> = None;
        loop {
            // The next candidates, newest first, merged across the streams.
            let mut candidates: Vec<Cursor> = Vec::new();
            let chunk = (limit + 1).clamp(16, 256);
            // At least one candidate per read, so that walking `next` always progresses.
            while candidates.len() < chunk && (examined == 0 || !work.exhausted()) {
                let Some(newest) = heads.iter().flatten().max().cloned() else {
                    break;
                };
                for (stream_idx, head) in heads.iter_mut().enumerate() {
                    if head.as_ref() == Some(&newest) {
                        *head = streams[stream_idx].next(self).await?;
                    }
                }
                examined += 1;
                work.spend(1);
                match Cursor::from_bytes(&newest) {
                    Ok(cursor) => candidates.push(cursor),
                    Err(_) => crate::skip_unreadable("posting", &newest, &"not a cursor"),
                }
            }
            if candidates.is_empty() {
                // Either every stream ended, or the deadline passed since
                // the last chunk: then continue after the last one decided.
                if heads.iter().any(Option::is_some) {
                    page.next = last_decided.or(page.next);
                }
                return Ok(page);
            }
            last_decided = candidates.last().cloned();
            let ids: Vec<String> = candidates.iter().map(|cursor| cursor.id().to_owned()).collect();
            let loaded = self.load_resolved(&ids).await?;
            work.spend(ids.len());
            for (cursor, post) in candidates.iter().zip(loaded) {
                let Some(post) = post else {
                    continue;
                };
                if post.post.cursor() != *cursor || !query.matches_doc(&Doc::new(&post)) {
                    continue;
                }
                if page.posts.len() == limit {
                    // One more match exists: the page is full and continues.
                    page.next = page.posts.last().map(|post| post.post.cursor());
                    return Ok(page);
                }
                page.posts.push(post);
            }
            if work.exhausted() {
                page.next = candidates.last().cloned();
                return Ok(page);
            }
        }
    }

    /// Buckets of a term in `[lowest, highest]`, newest first, up to `max`.
    pub(super) async fn buckets_desc(
        &self,
        term: &str,
        lowest: i64,
        highest: i64,
        max: i32,
    ) -> Result<Vec<i64>, StoreError> {
        let result = self
            .session
            .execute_unpaged(&self.statements.select_buckets_desc, (term, lowest, highest, max))
            .await
            .map_err(engine)?;
        result
            .into_rows_result()
            .map_err(engine)?
            .rows::<(i64,)>()
            .map_err(engine)?
            .map(|row| row.map(|(bucket,)| bucket).map_err(engine))
            .collect()
    }

    pub(super) async fn postings_desc(
        &self,
        term: &str,
        bucket: i64,
        lower: &[u8],
        upper: &[u8],
        max: i32,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        let result = self
            .session
            .execute_unpaged(&self.statements.select_postings_desc, (term, bucket, lower, upper, max))
            .await
            .map_err(engine)?;
        result
            .into_rows_result()
            .map_err(engine)?
            .rows::<(Vec<u8>,)>()
            .map_err(engine)?
            .map(|row| row.map(|(cursor,)| cursor).map_err(engine))
            .collect()
    }
}

/// Walks one term's posting list newest to oldest within a range, bucket by
/// bucket, skipping buckets where the term has no posting.
struct TermScan {
    term: String,
    /// Exclusive cursor bounds.
    lower: Vec<u8>,
    upper: Vec<u8>,
    lowest_bucket: i64,
    /// The highest bucket not yet listed.
    next_listed: Option<i64>,
    buckets: VecDeque<i64>,
    /// The bucket being read and the upper bound of its next chunk.
    current: Option<(i64, Vec<u8>)>,
    buffer: VecDeque<Vec<u8>>,
}

impl TermScan {
    fn new(inner: &Inner, term: &str, range: &Range) -> TermScan {
        let lower = range.after.as_ref().map(|cursor| cursor.as_bytes().to_vec()).unwrap_or_default();
        let upper =
            range.before.as_ref().map(|cursor| cursor.as_bytes().to_vec()).unwrap_or_else(|| CURSOR_MAX.to_vec());
        let lowest_bucket = range.after.as_ref().map(|cursor| inner.bucket_of(cursor.created_ms())).unwrap_or(i64::MIN);
        let highest_bucket =
            range.before.as_ref().map(|cursor| inner.bucket_of(cursor.created_ms())).unwrap_or(i64::MAX);
        TermScan {
            term: term.to_owned(),
            lower,
            upper,
            lowest_bucket,
            next_listed: (highest_bucket >= lowest_bucket).then_some(highest_bucket),
            buckets: VecDeque::new(),
            current: None,
            buffer: VecDeque::new(),
        }
    }

    /// The next (older) posting's cursor bytes, or `None`.
    async fn next(&mut self, inner: &Inner) -> Result<Option<Vec<u8>>, StoreError> {
        loop {
            if let Some(cursor) = self.buffer.pop_front() {
                return Ok(Some(cursor));
            }
            if let Some((bucket, upper)) = self.current.take() {
                let chunk = inner.postings_desc(&self.term, bucket, &self.lower, &upper, POSTINGS_CHUNK).await?;
                let full = chunk.len() == POSTINGS_CHUNK as usize;
                if let (true, Some(last)) = (full, chunk.last()) {
                    self.current = Some((bucket, last.clone()));
                }
                self.buffer.extend(chunk);
                continue;
            }
            if self.buckets.is_empty() {
                let Some(highest) = self.next_listed else {
                    return Ok(None);
                };
                let listed = inner.buckets_desc(&self.term, self.lowest_bucket, highest, BUCKETS_CHUNK).await?;
                self.next_listed = match listed.last() {
                    Some(&oldest) if listed.len() == BUCKETS_CHUNK as usize && oldest > self.lowest_bucket => {
                        Some(oldest - 1)
                    }
                    _ => None,
                };
                self.buckets.extend(listed);
            }
            let Some(bucket) = self.buckets.pop_front() else {
                return Ok(None);
            };
            self.current = Some((bucket, self.upper.clone()));
        }
    }
}
