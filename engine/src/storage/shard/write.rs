//! Writing items: the storage commands, arithmetic, deletes, touches and
//! flushes (room for them is `alloc.rs`'s).

use super::*;

/// Padding for numbers that an incr/decr shortened.
static SPACES: [u8; 1024] = [b' '; 1024];

impl Shard {
    /// Every storage command: set/add/replace/append/prepend/cas and meta
    /// set, on every wire; `value` is the data (what append/prepend add).
    ///
    /// ```
    /// # use segcore_engine::storage::*;
    /// let mut shard = Shard::new(&ShardConfig::default()).unwrap();
    /// let key = HashedKey::new(b"greeting");
    /// let add = StoreRequest::new(StoreMode::Add, 0, 0);
    /// let StoreResult::Stored(cas) = shard.store(key, b"hi", &add) else { panic!() };
    /// assert_eq!(shard.store(key, b"again", &add), StoreResult::NotStored);
    /// let mut stale = StoreRequest::new(StoreMode::Append, 0, 0);
    /// stale.compare_cas = Some(cas + 1);
    /// assert_eq!(shard.store(key, b"!", &stale), StoreResult::Exists);
    /// ```
    pub fn store(&mut self, key: HashedKey<'_>, value: &[u8], req: &StoreRequest) -> StoreResult {
        self.stats.cmd_set += 1;
        // A plain set needs no lookup first: the index insert below returns
        // whatever it replaces.
        let unconditional = req.mode == StoreMode::Set && req.compare_cas.is_none();
        let existing = if unconditional {
            None
        } else {
            self.find_live(key)
        };
        let concat = matches!(req.mode, StoreMode::Append | StoreMode::Prepend);
        // memcached's cas test: a cas of 0 compares nothing. Set and replace
        // with a cas are a cas command (a miss is NOT_FOUND); append and
        // prepend keep their own rules and fail only on a cas that differs;
        // add ignores a cas (meta `ME` with `C`; binary turns an add with a
        // cas into a cas command itself).
        let compare = req.compare_cas.filter(|_| req.mode != StoreMode::Add);
        let is_cas = compare.is_some() && !concat;
        let mut stale_store = false;
        match (compare, existing) {
            (None, _) => {}
            (Some(_), None) if is_cas => {
                self.stats.cas_misses += 1;
                return StoreResult::NotFound;
            }
            (Some(_), None) => {}
            (Some(expected), Some(loc)) => {
                let current = self.cas_of(loc);
                let matches = expected != 0 && expected == current;
                if concat {
                    if expected != 0 && !matches {
                        return StoreResult::Exists;
                    }
                } else if !matches {
                    if req.invalidate && expected != 0 && expected < current {
                        stale_store = true;
                    } else {
                        self.stats.cas_badval += 1;
                        return StoreResult::Exists;
                    }
                }
            }
        }
        match (req.mode, existing) {
            (StoreMode::Add, Some(loc)) => {
                // memcached refreshes an item that an add collided with.
                self.bump(loc, false);
                return StoreResult::NotStored;
            }
            (StoreMode::Replace, None) => return StoreResult::NotStored,
            (StoreMode::Append | StoreMode::Prepend, None) => match req.vivify {
                Some(exptime) => {
                    return self.store(
                        key,
                        value,
                        &StoreRequest {
                            mode: StoreMode::Set,
                            exptime,
                            vivify: None,
                            compare_cas: None,
                            ..*req
                        },
                    )
                }
                None => return StoreResult::NotStored,
            },
            _ => {}
        }
        let result = if concat {
            let Some(old) = existing else {
                return StoreResult::NotStored;
            };
            self.concat(key, old, value, req)
        } else {
            self.replace_value(key, existing, value, req, stale_store)
        };
        if is_cas && matches!(result, StoreResult::Stored(_)) {
            self.stats.cas_hits += 1;
        }
        result
    }

    pub(super) fn replace_value(
        &mut self,
        key: HashedKey<'_>,
        existing: Option<Location>,
        value: &[u8],
        req: &StoreRequest,
        stale_store: bool,
    ) -> StoreResult {
        let mut expire_at = match Expiry::from_exptime(req.exptime, self.now) {
            Expiry::Past => {
                // Stored and immediately expired: only the old value goes.
                if let Some(loc) = existing.or_else(|| self.find_live(key)) {
                    self.kill(key.hash, loc);
                }
                return StoreResult::Stored(0);
            }
            expiry => expiry.stored(),
        };
        let mut meta = self
            .new_item(req.flags, expire_at, req.new_cas)
            .cas_hidden(req.hides_cas);
        if stale_store {
            // A late writer (its cas is older) stores, but the item stays
            // stale, keeps its expiry and its outstanding recache token.
            if let Some(old) = existing {
                let header = self.segments.header(old);
                expire_at = header.expire_at;
                meta.expire_at = expire_at;
                meta.bits |= STALE | (header.bits & WIN_SENT);
            }
        }
        match self.put(key, [Part::Bytes(value), Part::Bytes(&[])], meta, None) {
            Ok(loc) => StoreResult::Stored(self.cas_of(loc)),
            Err(StoreResult::TooLarge) if req.mode == StoreMode::Set => {
                // As memcached: a failed set must not leave the old value.
                if let Some(loc) = self.find_live(key) {
                    self.kill(key.hash, loc);
                }
                StoreResult::TooLarge
            }
            Err(e) => e,
        }
    }

    pub(super) fn concat(
        &mut self,
        key: HashedKey<'_>,
        old: Location,
        value: &[u8],
        req: &StoreRequest,
    ) -> StoreResult {
        let item = self.segments.item(old);
        let flags = item.client_flags();
        let expire_at = item.header.expire_at;
        let old_value_at = self.segments.absolute_of(old)
            + item.header.key_offset()
            + usize::from(item.header.key_len);
        let stored = Part::Stored(old_value_at, item.header.value_len as usize);
        let incoming = Part::Bytes(value);
        let parts = if req.mode == StoreMode::Append {
            [stored, incoming]
        } else {
            [incoming, stored]
        };
        let meta = self
            .new_item(flags, expire_at, req.new_cas)
            .cas_hidden(req.hides_cas);
        // The old item's segment is pinned: eviction cannot take the bytes
        // being copied.
        match self.put(key, parts, meta, Some(self.segments.segment_of(old))) {
            Ok(loc) => StoreResult::Stored(self.cas_of(loc)),
            Err(e) => e,
        }
    }

    /// `stats reset`: zeroes this shard's counters (not its gauges).
    ///
    /// ```
    /// # use segcore_engine::storage::*;
    /// let mut shard = Shard::new(&ShardConfig::default()).unwrap();
    /// shard.store(HashedKey::new(b"k"), b"v", &StoreRequest::new(StoreMode::Set, 0, 0));
    /// shard.reset_stats();
    /// assert_eq!((shard.stats().cmd_set, shard.stats().curr_items), (0, 1));
    /// ```
    pub fn reset_stats(&mut self) {
        self.stats.reset_counters();
        self.classes.reset_counters();
    }

    /// Drops `key`'s value without counting a delete: memcached does this
    /// when a `set` is refused as too large, so no stale value outlives the
    /// client's attempt to replace it. True if there was one.
    ///
    /// ```
    /// # use segcore_engine::storage::*;
    /// let mut shard = Shard::new(&ShardConfig::default()).unwrap();
    /// let key = HashedKey::new(b"k");
    /// shard.store(key, b"old", &StoreRequest::new(StoreMode::Set, 0, 0));
    /// assert!(shard.unlink(key));
    /// assert!(shard.read(key, &ReadOptions::get(true)).is_none());
    /// assert_eq!(shard.stats().delete_hits, 0);
    /// ```
    pub fn unlink(&mut self, key: HashedKey<'_>) -> bool {
        match self.index.find(key, &self.segments) {
            Some(loc) => {
                self.kill(key.hash, loc);
                true
            }
            None => false,
        }
    }

    /// Every delete: remove the item, or as `opts` says only if its cas
    /// matches, mark it stale (`I`) or empty its value (`x`).
    ///
    /// ```
    /// # use segcore_engine::storage::*;
    /// let mut shard = Shard::new(&ShardConfig::default()).unwrap();
    /// let key = HashedKey::new(b"k");
    /// shard.store(key, b"v", &StoreRequest::new(StoreMode::Set, 0, 0));
    /// let invalidate = DeleteOptions { invalidate: true, ..DeleteOptions::default() };
    /// assert_eq!(shard.delete(key, &invalidate), DeleteResult::Deleted);
    /// let meta_get = ReadOptions { takes_token: true, ..ReadOptions::get(true) };
    /// let hit = shard.read(key, &meta_get).unwrap();
    /// assert!(hit.facts.stale && hit.facts.win, "served stale; the first reader recaches");
    /// assert_eq!(shard.delete(key, &DeleteOptions::default()), DeleteResult::Deleted);
    /// assert_eq!(shard.delete(key, &DeleteOptions::default()), DeleteResult::NotFound);
    /// ```
    pub fn delete(&mut self, key: HashedKey<'_>, opts: &DeleteOptions) -> DeleteResult {
        let Some(loc) = self.find_live(key) else {
            self.stats.delete_misses += 1;
            return DeleteResult::NotFound;
        };
        if opts.compare_cas.is_some_and(|cas| cas != self.cas_of(loc)) {
            return DeleteResult::Exists;
        }
        self.stats.delete_hits += 1;
        if !(opts.invalidate || opts.remove_value) {
            self.kill(key.hash, loc);
            return DeleteResult::Deleted;
        }
        // Rewrite the item (a new location means a new cas).
        let item = self.segments.item(loc);
        let header = item.header;
        let mut meta = self.new_item(item.client_flags(), header.expire_at, None);
        if opts.invalidate {
            meta.bits |= STALE;
            if let Some(exptime) = opts.ttl {
                meta.expire_at = match Expiry::from_exptime(exptime, self.now) {
                    Expiry::Past => {
                        self.kill(key.hash, loc);
                        return DeleteResult::Deleted;
                    }
                    e => e.stored(),
                };
            }
        }
        let value = if opts.remove_value {
            Part::Bytes(&[])
        } else {
            let at =
                self.segments.absolute_of(loc) + header.key_offset() + usize::from(header.key_len);
            Part::Stored(at, header.value_len as usize)
        };
        match self.put(
            key,
            [value, Part::Bytes(&[])],
            meta,
            Some(self.segments.segment_of(loc)),
        ) {
            Ok(_) => DeleteResult::Deleted,
            // Could not rewrite: the item goes, which is what a delete wanted.
            Err(_) => {
                if let Some(loc) = self.find_live(key) {
                    self.kill(key.hash, loc);
                }
                DeleteResult::Deleted
            }
        }
    }

    /// incr/decr, with optional create, cas check and touch.
    ///
    /// ```
    /// # use segcore_engine::storage::*;
    /// let mut shard = Shard::new(&ShardConfig::default()).unwrap();
    /// let key = HashedKey::new(b"hits");
    /// let incr = ArithRequest { incr: true, delta: 5, ..ArithRequest::default() };
    /// assert_eq!(shard.arith(key, &incr), ArithResult::NotFound);
    /// let create = ArithRequest { create: Some((10, 0)), ..incr };
    /// assert!(matches!(shard.arith(key, &create), ArithResult::Value { value: 10, .. }));
    /// assert!(matches!(shard.arith(key, &incr), ArithResult::Value { value: 15, .. }));
    /// ```
    pub fn arith(&mut self, key: HashedKey<'_>, req: &ArithRequest) -> ArithResult {
        let Some(loc) = self.find_live(key) else {
            if req.incr {
                self.stats.incr_misses += 1;
            } else {
                self.stats.decr_misses += 1;
            }
            let Some((initial, exptime)) = req.create else {
                return ArithResult::NotFound;
            };
            let mut digits = itoa::Buffer::new();
            let text = digits.format(initial).as_bytes();
            return match self.store(key, text, &StoreRequest::new(StoreMode::Add, 0, exptime)) {
                StoreResult::Stored(cas) => {
                    let ttl = match self.find_live(key) {
                        Some(loc) => ttl_remaining(self.segments.header(loc).expire_at, self.now),
                        None => -1,
                    };
                    ArithResult::Value {
                        value: initial,
                        cas,
                        ttl,
                    }
                }
                _ => ArithResult::OutOfMemory,
            };
        };
        if req.compare_cas.is_some_and(|cas| cas != self.cas_of(loc)) {
            return ArithResult::Exists;
        }
        let item = self.segments.item(loc);
        let Some(current) = parse_counter(item.value()) else {
            return ArithResult::NonNumeric;
        };
        let value = if req.incr {
            self.stats.incr_hits += 1;
            current.wrapping_add(req.delta)
        } else {
            self.stats.decr_hits += 1;
            current.saturating_sub(req.delta)
        };
        let mut expire_at = item.header.expire_at;
        if let Some(exptime) = req.touch {
            expire_at = match Expiry::from_exptime(exptime, self.now) {
                Expiry::Past => 1,
                e => e.stored(),
            };
        }
        let old_len = item.value().len();
        let meta = self
            .new_item(item.client_flags(), expire_at, None)
            .cas_hidden(req.hides_cas);
        let mut digits = itoa::Buffer::new();
        let text = digits.format(value).as_bytes();
        // As memcached: a number that got shorter keeps the value's length,
        // padded with spaces (memcached rewrites it in place).
        let pad = old_len.saturating_sub(text.len());
        let padding = if pad <= SPACES.len() {
            &SPACES[..pad]
        } else {
            &[][..]
        };
        match self.put(key, [Part::Bytes(text), Part::Bytes(padding)], meta, None) {
            Ok(loc) => ArithResult::Value {
                value,
                cas: self.cas_of(loc),
                ttl: ttl_remaining(expire_at, self.now),
            },
            Err(_) => ArithResult::OutOfMemory,
        }
    }

    /// touch: set the expiry; false when the key is missing.
    ///
    /// ```
    /// # use segcore_engine::storage::*;
    /// let mut shard = Shard::new(&ShardConfig::default()).unwrap();
    /// let key = HashedKey::new(b"session");
    /// assert!(!shard.touch(key, 60));
    /// shard.store(key, b"v", &StoreRequest::new(StoreMode::Set, 0, 0));
    /// assert!(shard.touch(key, 60));
    /// assert_eq!(shard.read(key, &ReadOptions::get(true)).unwrap().ttl, 60);
    /// ```
    pub fn touch(&mut self, key: HashedKey<'_>, exptime: i64) -> bool {
        self.stats.cmd_touch += 1;
        match self.find_live(key) {
            Some(loc) => {
                self.stats.touch_hits += 1;
                self.set_expiry(key.hash, loc, exptime);
                true
            }
            None => {
                self.stats.touch_misses += 1;
                false
            }
        }
    }

    /// Rewrites an item's expiry in place; false if that expired it.
    pub(super) fn set_expiry(&mut self, hash: u64, loc: Location, exptime: i64) -> bool {
        match Expiry::from_exptime(exptime, self.now) {
            Expiry::Past => {
                self.kill(hash, loc);
                false
            }
            expiry => {
                let mut header = self.segments.header(loc);
                header.expire_at = expiry.stored();
                self.segments.set_header(loc, &header);
                // The segment must outlive its longest-lived item.
                self.segments
                    .meta_mut(self.segments.segment_of(loc))
                    .note_expiry(header.expire_at);
                true
            }
        }
    }

    /// flush_all: everything stored before the flush instant goes. `None`
    /// (or a delay <= 0) means now; a later flush_all replaces a pending one.
    ///
    /// ```
    /// # use segcore_engine::storage::*;
    /// let mut shard = Shard::new(&ShardConfig::default()).unwrap();
    /// shard.set_time(1_700_000_000);
    /// let key = HashedKey::new(b"k");
    /// shard.store(key, b"v", &StoreRequest::new(StoreMode::Set, 0, 0));
    /// shard.flush_all(Some(10));
    /// assert!(shard.read(key, &ReadOptions::get(true)).is_some(), "not yet");
    /// shard.set_time(1_700_000_010);
    /// assert!(shard.read(key, &ReadOptions::get(true)).is_none());
    /// ```
    pub fn flush_all(&mut self, delay: Option<i64>) {
        self.stats.cmd_flush += 1;
        match delay.filter(|&d| d > 0) {
            None => {
                self.pending_flush = None;
                self.clear_all();
            }
            Some(d) => {
                // memcached invalidates items stored up to one second before
                // the instant it computes for the delay.
                let at = Expiry::from_exptime(d, self.now).stored().saturating_sub(1);
                self.pending_flush = Some(at);
                self.set_time(self.now);
            }
        }
    }

    pub(super) fn clear_all(&mut self) {
        for id in 0..self.segments.count() as u32 {
            if matches!(
                self.segments.meta(id).state,
                SegmentState::Open | SegmentState::Sealed
            ) {
                self.segments.release(id);
            }
        }
        self.buckets.clear();
        self.index.clear();
        self.stats.curr_items = 0;
        self.stats.bytes = 0;
        self.classes.clear_live();
    }
}
