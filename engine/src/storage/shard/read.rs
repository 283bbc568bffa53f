//! Reading items: lookups (expired items die on the way), get and gets,
//! gat, meta get with its anti-stampede logic, me, and what a read records
//! (the access bit, the access time, whether its cas was shown).

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

    /// gets: the item, marked as read (its cas shown).
    pub fn get(&mut self, key: HashedKey<'_>) -> Option<ItemView<'_>> {
        self.get_with(key, true)
    }

    /// get (`cas_shown` false) or gets: the item, marked as read.
    pub fn get_with(&mut self, key: HashedKey<'_>, cas_shown: bool) -> Option<ItemView<'_>> {
        self.stats.cmd_get += 1;
        match self.lookup(key) {
            Lookup::Found(loc) => {
                self.stats.get_hits += 1;
                self.bump(loc, cas_shown);
                Some(self.view(loc))
            }
            Lookup::Expired => {
                self.stats.get_expired += 1;
                self.stats.get_misses += 1;
                None
            }
            Lookup::Missing => {
                self.stats.get_misses += 1;
                None
            }
        }
    }

    /// gat/gats: get, then set the expiry.
    pub fn get_and_touch(&mut self, key: HashedKey<'_>, exptime: i64) -> Option<ItemView<'_>> {
        self.stats.cmd_touch += 1;
        self.stats.cmd_get += 1;
        let Some(loc) = self.find_live(key) else {
            self.stats.touch_misses += 1;
            self.stats.get_misses += 1;
            return None;
        };
        self.stats.touch_hits += 1;
        self.stats.get_hits += 1;
        self.bump(loc, true);
        // A negative exptime expires the item, but this read still sees it
        // (as in memcached); its bytes stay put until the next write.
        self.set_expiry(key.hash, loc, exptime);
        Some(self.view(loc))
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

    /// Debug information for `me`, without marking the item read.
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
