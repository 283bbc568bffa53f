//! Reading items: lookups (expired items die on the way), the one read
//! every read command is (get/gets, gat/gats, meta get with its
//! anti-stampede logic), me, and what a read records (the access bit, the
//! access time, whether its cas was shown).

use super::*;

impl Shard {
    pub(super) fn lookup(&mut self, key: HashedKey<'_>) -> Lookup {
        if let Some(sketch) = &mut self.sketch {
            sketch.increment(key.hash);
        }
        let Some(loc) = self.index.find(key, &self.segments) else {
            return Lookup::Missing;
        };
        if is_expired(self.segments.header(loc).expire_at, self.now) {
            self.kill(key.hash, loc);
            return Lookup::Expired;
        }
        Lookup::Found(loc)
    }

    pub(super) fn find_live(&mut self, key: HashedKey<'_>) -> Option<Location> {
        match self.lookup(key) {
            Lookup::Found(loc) => Some(loc),
            _ => None,
        }
    }

    pub(super) fn cas_of(&self, loc: Location) -> u64 {
        self.segments.item(loc).explicit_cas().unwrap_or_else(|| {
            let generation = self.segments.meta(self.segments.segment_of(loc)).generation;
            (u64::from(generation) << 32) | u64::from(loc.raw())
        })
    }

    pub(super) fn view(&self, loc: Location) -> ItemView<'_> {
        let item = self.segments.item(loc);
        ItemView {
            key: item.key(),
            value: item.value(),
            flags: item.client_flags(),
            cas: self.cas_of(loc),
            expire_at: item.header.expire_at,
        }
    }

    /// Marks an item read: accessed (second chance), fetched, last access,
    /// and whether the reply shows its cas.
    pub(super) fn bump(&mut self, loc: Location, cas_shown: bool) -> Header {
        let before = self.segments.header(loc);
        let mut after = before;
        after.bits |= ACCESSED | FETCHED;
        if cas_shown {
            after.bits |= CAS_SHOWN;
        }
        after.last_access = self.access_code(loc, self.now);
        if after != before {
            self.segments.set_header(loc, &after);
        }
        before
    }

    /// Every read command: the item, marked as read as `opts` says, or
    /// `None` (after creating a placeholder when `opts.vivify` asks, which
    /// the creator gets back). Expired items die on the way.
    ///
    /// ```
    /// # use segcore_engine::storage::*;
    /// let mut shard = Shard::new(&ShardConfig::default()).unwrap();
    /// let key = HashedKey::new(b"user:1");
    /// assert!(shard.read(key, &ReadOptions::get(false)).is_none());
    /// shard.store(key, b"ada", &StoreRequest::new(StoreMode::Set, 7, 0));
    /// let hit = shard.read(key, &ReadOptions::get_and_touch(60, true)).unwrap();
    /// assert_eq!((hit.item.value, hit.item.flags, hit.ttl), (&b"ada"[..], 7, 60));
    /// let stats = shard.stats();
    /// assert_eq!((stats.get_misses, stats.touch_hits), (1, 1));
    /// ```
    pub fn read(&mut self, key: HashedKey<'_>, opts: &ReadOptions) -> Option<ReadHit<'_>> {
        let loc = match self.lookup(key) {
            Lookup::Found(loc) => loc,
            missing => {
                self.count_read_miss(matches!(missing, Lookup::Expired), opts);
                let exptime = opts.vivify?;
                return self.vivify(key, exptime);
            }
        };
        match opts.touch {
            Some(exptime) => {
                self.stats.cmd_touch += 1;
                self.stats.touch_hits += 1;
                // A negative exptime expires the item, but this read still
                // sees it (as in memcached); its bytes stay put until the
                // next write.
                self.set_expiry(key.hash, loc, exptime);
            }
            None => {
                self.stats.cmd_get += 1;
                self.stats.get_hits += 1;
            }
        }
        let mut header = self.segments.header(loc);
        let before = header;
        let win_sent = header.bits & WIN_SENT != 0;
        let stale = header.bits & STALE != 0;
        let remaining = ttl_remaining(header.expire_at, self.now);
        let win = opts.takes_token
            && !win_sent
            && (stale
                || opts
                    .recache
                    .is_some_and(|below| header.expire_at != 0 && remaining < below));
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
        // Only a meta get reports the access history; a classic read
        // skips decoding it.
        let facts = if opts.takes_token {
            ReadFacts {
                hit_before: before.bits & FETCHED != 0,
                last_access: self.access_age(loc, before.last_access),
                win,
                stale,
                win_sent,
            }
        } else {
            ReadFacts::default()
        };
        Some(ReadHit {
            item: self.view(loc),
            ttl: remaining,
            facts,
        })
    }

    /// A miss counts as memcached counts it: a touch miss for gat and
    /// binary GAT/Touch, a get miss otherwise; an expired item also as
    /// `get_expired`.
    fn count_read_miss(&mut self, expired: bool, opts: &ReadOptions) {
        if expired {
            self.stats.get_expired += 1;
        }
        if opts.touch.is_some() && opts.touch_counts_misses {
            self.stats.cmd_touch += 1;
            self.stats.touch_misses += 1;
        } else {
            self.stats.cmd_get += 1;
            self.stats.get_misses += 1;
        }
    }

    /// Creates the empty placeholder a meta `N` miss asks for; its creator
    /// gets the win token, later readers see `Z` until someone sets a value.
    pub(super) fn vivify(&mut self, key: HashedKey<'_>, exptime: i64) -> Option<ReadHit<'_>> {
        let expire_at = match Expiry::from_exptime(exptime, self.now) {
            Expiry::Past => return None,
            e => e.stored(),
        };
        let mut meta = self.new_item(0, expire_at, None);
        meta.bits |= WIN_SENT;
        let loc = self
            .put(key, [Part::Bytes(&[]), Part::Bytes(&[])], meta, None)
            .ok()?;
        Some(ReadHit {
            item: self.view(loc),
            ttl: ttl_remaining(expire_at, self.now),
            facts: ReadFacts {
                win: true,
                ..ReadFacts::default()
            },
        })
    }

    /// Debug information for `me`, without marking the item read.
    ///
    /// ```
    /// # use segcore_engine::storage::*;
    /// let mut shard = Shard::new(&ShardConfig::default()).unwrap();
    /// let key = HashedKey::new(b"k");
    /// shard.store(key, b"value", &StoreRequest::new(StoreMode::Set, 0, 0));
    /// let info = shard.debug(key).unwrap();
    /// assert_eq!((info.ttl, info.fetched, info.value_len), (-1, false, 5));
    /// ```
    pub fn debug(&mut self, key: HashedKey<'_>) -> Option<DebugInfo> {
        let loc = self.find_live(key)?;
        let item = self.segments.item(loc);
        Some(DebugInfo {
            ttl: ttl_remaining(item.header.expire_at, self.now),
            last_access: self.access_age(loc, item.header.last_access),
            cas: self.cas_of(loc),
            fetched: item.header.bits & FETCHED != 0,
            value_len: item.header.value_len as usize,
            item_len: item.header.total_len(),
        })
    }

    /// The header code for an access at `at` to the item at `loc`.
    pub(super) fn access_code(&self, loc: Location, at: u32) -> u16 {
        let opened = self.segments.meta(self.segments.segment_of(loc)).created_at;
        access::encode(at, opened)
    }

    /// When the item at `loc`, whose header holds `code`, was last accessed.
    pub(super) fn accessed_at(&self, loc: Location, code: u16) -> u32 {
        access::decode(
            code,
            self.segments.meta(self.segments.segment_of(loc)).created_at,
        )
    }

    /// Seconds since that access (meta `l`, `me`'s `la=`).
    pub(super) fn access_age(&self, loc: Location, code: u16) -> u64 {
        u64::from(self.now.saturating_sub(self.accessed_at(loc, code)))
    }
}
