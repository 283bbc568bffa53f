//! Writing items: allocation in TTL buckets (evicting when full), the
//! storage commands, arithmetic, deletes, touches and flushes.

use super::*;

/// Padding for numbers that an incr/decr shortened.
static SPACES: [u8; 1024] = [b' '; 1024];

impl Shard {
    /// Allocates `len` bytes in bucket `bucket`, evicting if needed. `pin`
    /// is a segment that must survive (it holds data being copied).
    pub(super) fn allocate(
        &mut self,
        bucket: usize,
        len: usize,
        pin: Option<u32>,
    ) -> Option<(u32, u32)> {
        loop {
            let open = self
                .buckets
                .get(bucket)
                .tail
                .filter(|&tail| self.segments.meta(tail).state == SegmentState::Open);
            if let Some(tail) = open {
                if let Some(offset) = self.segments.try_append(tail, len) {
                    return Some((tail, offset));
                }
                self.segments.meta_mut(tail).state = SegmentState::Sealed;
            }
            match self
                .segments
                .alloc(SegmentState::Open, self.now, bucket as u16)
            {
                Some(id) => self.buckets.push_back(bucket, id, &mut self.segments),
                None => {
                    if !self.evict(pin) {
                        self.stats.out_of_memory += 1;
                        return None;
                    }
                }
            }
        }
    }

    /// Writes a new item at `(segment, offset)` and accounts for it.
    pub(super) fn write_item(
        &mut self,
        at: (u32, u32),
        key: Part<'_>,
        key_len: usize,
        value: [Part<'_>; 2],
        meta: NewItem,
    ) -> Location {
        let value_len = Part::total(&value);
        let header = Header {
            key_len: key_len as u8,
            bits: meta.bits,
            last_access: access::encode(meta.last_access, self.segments.meta(at.0).created_at),
            value_len: value_len as u32,
            expire_at: meta.expire_at,
        };
        let start = self.segments.absolute(at.0, at.1);
        let total = header.total_len();
        let memory = self.segments.memory_mut();
        header.write(&mut memory[start..]);
        item::write_optional(&mut memory[start..], meta.bits, meta.flags, meta.cas);
        let mut cursor = start + header.key_offset();
        for part in std::iter::once(key).chain(value) {
            match part {
                Part::Bytes(bytes) => {
                    memory[cursor..cursor + bytes.len()].copy_from_slice(bytes);
                    cursor += bytes.len();
                }
                Part::Stored(from, len) => {
                    memory.copy_within(from..from + len, cursor);
                    cursor += len;
                }
            }
        }
        let seg = self.segments.meta_mut(at.0);
        seg.live_items += 1;
        seg.live_bytes += total as u32;
        seg.note_expiry(meta.expire_at);
        self.stats.curr_items += 1;
        self.stats.bytes += total as u64;
        self.stats.total_items += 1;
        self.classes.added(header.memcached_size(), total);
        self.segments.location(at.0, at.1)
    }

    /// Marks an item dead and drops its accounting (not its index entry).
    pub(super) fn mark_dead(&mut self, loc: Location) {
        let mut header = self.segments.header(loc);
        if header.bits & DEAD != 0 {
            return;
        }
        header.bits |= DEAD;
        self.segments.set_header(loc, &header);
        let len = header.total_len() as u32;
        let seg = self.segments.meta_mut(self.segments.segment_of(loc));
        seg.live_items -= 1;
        seg.live_bytes -= len;
        self.stats.curr_items -= 1;
        self.stats.bytes -= u64::from(len);
        self.classes.removed(header.memcached_size(), len as usize);
    }

    /// Removes an item: index entry and accounting.
    pub(super) fn kill(&mut self, hash: u64, loc: Location) {
        self.index.remove_location(hash, loc);
        self.mark_dead(loc);
    }

    /// Stores a new item for `key`, replacing whatever the index held.
    pub(super) fn put(
        &mut self,
        key: HashedKey<'_>,
        value: [Part<'_>; 2],
        meta: NewItem,
        pin: Option<u32>,
    ) -> Result<Location, StoreResult> {
        let value_len = Part::total(&value);
        let len = item::item_len(key.key.len(), value_len, meta.bits);
        if len > self.segments.segment_size()
            || key.key.is_empty()
            || key.key.len() > item::MAX_KEY_LEN
        {
            return Err(StoreResult::TooLarge);
        }
        let ttl = (meta.expire_at != 0).then(|| meta.expire_at.saturating_sub(self.now));
        let Some(at) = self.allocate(bucket_for(ttl), len, pin) else {
            let size =
                classes::memcached_size(key.key.len(), value_len, meta.bits & HAS_FLAGS != 0);
            self.classes.out_of_memory(size);
            return Err(StoreResult::OutOfMemory);
        };
        let loc = self.write_item(at, Part::Bytes(key.key), key.key.len(), value, meta);
        if let Some(old) = self.index.upsert(key, loc, &self.segments) {
            self.mark_dead(old);
        }
        Ok(loc)
    }

    /// A new item's header fields. Its cas counts as shown (the safe side)
    /// until the caller knows the reply hides it ([`NewItem::cas_hidden`]).
    pub(super) fn new_item(&self, flags: u32, expire_at: u32, new_cas: Option<u64>) -> NewItem {
        let mut bits = CAS_SHOWN;
        if flags != 0 {
            bits |= HAS_FLAGS;
        }
        if new_cas.is_some() {
            bits |= HAS_CAS;
        }
        NewItem {
            bits,
            flags,
            cas: new_cas.unwrap_or(0),
            expire_at,
            last_access: self.now,
        }
    }

    /// set/add/replace/append/prepend/cas, and meta set.
    pub fn store(&mut self, key: HashedKey<'_>, req: &StoreRequest<'_>) -> StoreResult {
        self.stats.cmd_set += 1;
        // A plain set needs no lookup first: the index insert below returns
        // whatever it replaces.
        let unconditional = req.mode == StoreMode::Set && req.compare_cas.is_none();
        let existing = if unconditional {
            None
        } else {
            self.find_live(key)
        };
        let is_cas = req.compare_cas.is_some();
        let mut stale_store = false;
        if let Some(expected) = req.compare_cas {
            match existing {
                None => {
                    self.stats.cas_misses += 1;
                    return StoreResult::NotFound;
                }
                Some(loc) => {
                    let current = self.cas_of(loc);
                    if req.invalidate && expected < current {
                        stale_store = true;
                    } else if expected != current {
                        self.stats.cas_badval += 1;
                        return StoreResult::Exists;
                    }
                }
            }
        }
        let concat = matches!(req.mode, StoreMode::Append | StoreMode::Prepend);
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
                        &StoreRequest {
                            mode: StoreMode::Set,
                            exptime,
                            vivify: None,
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
            self.concat(key, old, req)
        } else {
            self.replace_value(key, existing, req, stale_store)
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
        req: &StoreRequest<'_>,
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
        match self.put(key, [Part::Bytes(req.value), Part::Bytes(&[])], meta, None) {
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
        req: &StoreRequest<'_>,
    ) -> StoreResult {
        let item = self.segments.item(old);
        let flags = item.client_flags();
        let expire_at = item.header.expire_at;
        let old_value_at = self.segments.absolute_of(old)
            + item.header.key_offset()
            + usize::from(item.header.key_len);
        let stored = Part::Stored(old_value_at, item.header.value_len as usize);
        let incoming = Part::Bytes(req.value);
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

    /// delete (with an optional cas, as binary Delete and meta `C` allow).
    pub fn delete(&mut self, key: HashedKey<'_>, compare_cas: Option<u64>) -> DeleteResult {
        self.meta_delete(
            key,
            &DeleteOptions {
                compare_cas,
                ..DeleteOptions::default()
            },
        )
    }

    /// `stats reset`: zeroes this shard's counters (not its gauges).
    pub fn reset_stats(&mut self) {
        self.stats.reset_counters();
        self.classes.reset_counters();
    }

    /// Drops `key`'s value without counting a delete: memcached does this
    /// when a `set` is refused as too large, so no stale value outlives the
    /// client's attempt to replace it. True if there was one.
    pub fn unlink(&mut self, key: HashedKey<'_>) -> bool {
        match self.index.find(key, &self.segments) {
            Some(loc) => {
                self.kill(key.hash, loc);
                true
            }
            None => false,
        }
    }

    /// Meta delete: delete, invalidate (`I`) or empty (`x`).
    pub fn meta_delete(&mut self, key: HashedKey<'_>, opts: &DeleteOptions) -> DeleteResult {
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
            return match self.store(key, &StoreRequest::new(StoreMode::Add, text, 0, exptime)) {
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

    /// Meta get: get plus the anti-stampede logic (vivify, recache, stale).
    pub fn meta_get(&mut self, key: HashedKey<'_>, opts: &ReadOptions) -> Option<MetaHit<'_>> {
        self.stats.cmd_get += 1;
        let loc = match self.lookup(key) {
            Lookup::Found(loc) => loc,
            missing => {
                if matches!(missing, Lookup::Expired) {
                    self.stats.get_expired += 1;
                }
                self.stats.get_misses += 1;
                let exptime = opts.vivify?;
                return self.vivify(key, exptime);
            }
        };
        self.stats.get_hits += 1;
        if let Some(exptime) = opts.touch {
            self.stats.cmd_touch += 1;
            self.stats.touch_hits += 1;
            self.set_expiry(key.hash, loc, exptime);
        }
        let mut header = self.segments.header(loc);
        let before = header;
        let win_sent = header.bits & WIN_SENT != 0;
        let stale = header.bits & STALE != 0;
        let remaining = ttl_remaining(header.expire_at, self.now);
        let recache = opts
            .recache
            .is_some_and(|below| header.expire_at != 0 && remaining < below);
        let win = !win_sent && (recache || stale);
        if win {
            header.bits |= WIN_SENT;
        }
        if !opts.hides_cas {
            header.bits |= CAS_SHOWN;
        }
        if !opts.no_bump {
            header.bits |= ACCESSED | FETCHED;
            header.last_access = self.access_code(loc, self.now);
        }
        if header != before {
            self.segments.set_header(loc, &header);
        }
        Some(MetaHit {
            item: self.view(loc),
            ttl: remaining,
            facts: ReadFacts {
                hit_before: before.bits & FETCHED != 0,
                last_access: self.access_age(loc, before.last_access),
                win,
                stale,
                win_sent,
            },
        })
    }

    /// Creates the empty placeholder a meta `N` miss asks for; its creator
    /// gets the win token, later readers see `Z` until someone sets a value.
    pub(super) fn vivify(&mut self, key: HashedKey<'_>, exptime: i64) -> Option<MetaHit<'_>> {
        let expire_at = match Expiry::from_exptime(exptime, self.now) {
            Expiry::Past => return None,
            e => e.stored(),
        };
        let mut meta = self.new_item(0, expire_at, None);
        meta.bits |= WIN_SENT;
        let loc = self
            .put(key, [Part::Bytes(&[]), Part::Bytes(&[])], meta, None)
            .ok()?;
        Some(MetaHit {
            item: self.view(loc),
            ttl: ttl_remaining(expire_at, self.now),
            facts: ReadFacts {
                win: true,
                ..ReadFacts::default()
            },
        })
    }

    /// flush_all: everything stored before the flush instant goes. `None`
    /// (or a delay <= 0) means now; a later flush_all replaces a pending one.
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
