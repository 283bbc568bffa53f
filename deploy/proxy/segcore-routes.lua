-- Route handlers for segcore behind memcached's built-in proxy (memcached
-- 1.6.38 built with --enable-proxy), on top of its bundled routelib:
--
--   memcached -o proxy_config=routelib:/usr/share/segcore/proxy/segcore-routes.lua,proxy_arg=/etc/segcore/cluster.lua
--
-- The cluster file (proxy_arg) calls segcore_cluster{} (bottom of this
-- file) with the zones and their nodes; see deploy/proxy/cluster.lua.
--
-- The consistency model, in exact words: primary/replica with synchronous
-- write-all and read-one; not a leaderless quorum.
--   * A write goes to every zone and is answered once every zone has
--     answered. If any zone fails it (down, timed out, SERVER_ERROR), the
--     client gets SERVER_ERROR, never STORED: the zones that did take it
--     hold the new value, the failed one may hold the old value or none.
--   * A read goes to the proxy's own zone first and fails over to the
--     others. After a partial write failure a reader in the failed zone
--     sees that zone's old value (or a miss, then the other zone's new
--     value) until the key is written again, expires, or the failed zone's
--     copy is dropped; a zone that misses a key another zone holds gets
--     that copy written back (add-if-absent, same flags and remaining
--     TTL) by the read that found it: read repair.
--   * Each key has a primary zone (a hash of the key over the zone names).
--     Commands whose answer depends on one copy's state go there: classic
--     `cas`, meta commands with a cas (`C`), and meta gets with a lease
--     (`N` vivify, `R` recache), so a stampede gets one winner across all
--     replicas. A cas that wins on the primary is then written to the other
--     zones unconditionally.

local FNV_OFFSET <const> = 2166136261
local FNV_PRIME <const> = 16777619

-- FNV-1a over the key's bytes: which zone is a key's primary.
local function key_hash(key)
    local h = FNV_OFFSET
    for i = 1, #key do
        h = ((h ~ string.byte(key, i)) * FNV_PRIME) & 0xffffffff
    end
    return h
end

-- The index (1-based) of `key`'s primary zone among `n`.
local function primary_of(key, n)
    return (key_hash(key) % n) + 1
end

-- A write some zone failed: counted, and answered as memcached answers a
-- failed store.
local function write_failed(stat, zone)
    mcp.stat(stat, 1)
    return "SERVER_ERROR write failed in zone " .. zone .. "\r\n"
end

-- The zone names in a fixed order (pairs() has none), the local one first.
local function zone_order(children, near)
    local names = {}
    for name, _ in pairs(children) do
        if name ~= near then
            table.insert(names, name)
        end
    end
    table.sort(names)
    if near ~= nil and children[near] ~= nil then
        table.insert(names, 1, near)
    end
    return names
end

-- A response that a zone answered cleanly (a miss or NOT_STORED counts;
-- a timeout, a dead backend or SERVER_ERROR does not).
local function answered(res)
    return res ~= nil and res:ok()
end

local function stat_id(ctx, t, what)
    return ctx:get_stats_id((t.stats_name or ctx:label()) .. "_" .. what)
end

-- The request line again without its `C` (compare cas) token, for the
-- zones after the primary: their cas values are their own.
local function without_cas(r)
    local parts = {}
    for i = 1, r:ntokens() do
        local tok = r:token(i)
        if i < 3 or string.sub(tok, 1, 1) ~= "C" then
            table.insert(parts, tok)
        end
    end
    return table.concat(parts, " ") .. "\r\n"
end

--
-- route_zwrite: every zone, a failure anywhere is the client's failure.
--

function route_zwrite_conf(t, ctx)
    t.local_zone = t.local_zone or ctx:local_zone()
    t.partial_id = stat_id(ctx, t, "partial_writes")
    t.lag = {
        writes = stat_id(ctx, t, "replicated_writes"),
        total_us = stat_id(ctx, t, "replication_lag_us"),
        over_1ms = stat_id(ctx, t, "replication_lag_over_1ms"),
        over_10ms = stat_id(ctx, t, "replication_lag_over_10ms"),
        over_100ms = stat_id(ctx, t, "replication_lag_over_100ms"),
    }
    return t
end

-- Replication lag of one write that every zone took: how long after the
-- first zone had the new value the last one had it (the spread of the
-- zones' response times; each was sent at once). A reader of the slowest
-- zone could see the old value for that long. Counted in `stats proxy`:
-- replicated_writes, replication_lag_us (the sum: lag_us / writes is the
-- mean), and how many writes lagged over 1, 10 and 100 ms — the figures
-- to alert on.
local function count_lag(lag, fastest_us, slowest_us)
    local us = slowest_us - fastest_us
    if us < 0 then
        us = 0
    end
    mcp.stat(lag.writes, 1)
    mcp.stat(lag.total_us, us)
    if us > 1000 then
        mcp.stat(lag.over_1ms, 1)
        if us > 10000 then
            mcp.stat(lag.over_10ms, 1)
            if us > 100000 then
                mcp.stat(lag.over_100ms, 1)
            end
        end
    end
end

local function zwrite_all_f(rctx, arg)
    local handles, names, partial = arg.h, arg.names, arg.partial_id
    local n = #handles
    return function(r)
        rctx:enqueue(r, handles)
        rctx:wait_cond(n, mcp.WAIT_ANY)
        local first = nil
        local fastest, slowest = math.maxinteger, 0
        for i = 1, n do
            local res = rctx:result(handles[i])
            if not answered(res) then
                return write_failed(partial, names[i])
            end
            if i == 1 then
                first = res
            end
            local us = res:elapsed()
            fastest, slowest = math.min(fastest, us), math.max(slowest, us)
        end
        count_lag(arg.lag, fastest, slowest)
        -- Zones can disagree (an add that one zone refuses): the local
        -- zone's answer is the one given.
        return first
    end
end

-- cas (classic, or meta with C): the primary judges it; a win is copied to
-- the other zones unconditionally (their cas values differ).
local function zwrite_cas_f(rctx, arg)
    local primary, rest, names, partial = arg.h, arg.rest, arg.names, arg.partial_id
    local n = #names
    local classic = arg.classic
    return function(r)
        local p = primary_of(r:key(), n)
        local res = rctx:enqueue_and_wait(r, primary[p])
        if not answered(res) then
            return write_failed(partial, names[p])
        end
        local code = res:code()
        if code == mcp.MCMC_CODE_EXISTS or code == mcp.MCMC_CODE_NOT_FOUND
            or code == mcp.MCMC_CODE_NOT_STORED then
            return res -- EXISTS / NOT_FOUND / NOT_STORED (EX, NF, NS): nothing written
        end
        local copy
        if classic then
            copy = mcp.request(string.format("set %s %s %s %s\r\n",
                r:token(2), r:token(3), r:token(4), r:token(5)), r)
        else
            copy = mcp.request(without_cas(r), r)
        end
        local others = rest[p]
        rctx:enqueue(copy, others)
        rctx:wait_cond(#others, mcp.WAIT_ANY)
        local slowest = 0
        for i, h in ipairs(others) do
            local copied = rctx:result(h)
            if not answered(copied) then
                return write_failed(partial, arg.rest_names[p][i])
            end
            slowest = math.max(slowest, copied:elapsed())
        end
        -- The copies start once the primary has answered: they trail it
        -- by their whole time.
        count_lag(arg.lag, 0, slowest)
        return res
    end
end

function route_zwrite_start(a, ctx, fgen)
    local names = zone_order(a.children, a.local_zone)
    local o = { names = names, partial_id = a.partial_id, lag = a.lag }
    local cmd = ctx:cmd()
    local cas = cmd == mcp.CMD_CAS or a.compare_cas
    if cas then
        -- One handle per zone for the primary's turn, and per primary the
        -- other zones' handles for the copy (a handle is used once per
        -- request).
        o.h, o.rest, o.rest_names = {}, {}, {}
        for i, name in ipairs(names) do
            o.h[i] = fgen:new_handle(a.children[name])
            o.rest[i], o.rest_names[i] = {}, {}
            for j, other in ipairs(names) do
                if j ~= i then
                    table.insert(o.rest[i], fgen:new_handle(a.children[other]))
                    table.insert(o.rest_names[i], other)
                end
            end
        end
        o.classic = cmd == mcp.CMD_CAS
        fgen:ready({ a = o, n = ctx:label(), f = zwrite_cas_f })
    else
        o.h = {}
        for i, name in ipairs(names) do
            o.h[i] = fgen:new_handle(a.children[name])
        end
        fgen:ready({ a = o, n = ctx:label(), f = zwrite_all_f })
    end
end

--
-- route_zmeta_write: a meta write (ms, md, ma) goes to the primary first
-- when it carries a cas (C), to every zone otherwise.
--

function route_zmeta_write_conf(t, ctx)
    return route_zwrite_conf(t, ctx)
end

function route_zmeta_write_start(a, ctx, fgen)
    local all, cas = mcp.funcgen_new(), mcp.funcgen_new()
    route_zwrite_start(a, ctx, all)
    route_zwrite_start({ children = a.children, local_zone = a.local_zone,
        partial_id = a.partial_id, lag = a.lag, compare_cas = true }, ctx, cas)
    local h_all, h_cas = fgen:new_handle(all), fgen:new_handle(cas)
    fgen:ready({ n = ctx:label(), f = function(rctx)
        return function(r)
            if r:has_flag("C") then
                return rctx:enqueue_and_wait(r, h_cas)
            end
            return rctx:enqueue_and_wait(r, h_all)
        end
    end })
end

--
-- route_zread: the local zone first, then the others; a hit in another
-- zone is written back into each zone that missed (read repair). Keys in
-- `hot_keys` start at a random zone, spreading their reads over every
-- copy. With `primary_first` (gets: its cas is for a later cas) the key's
-- primary zone is asked first.
--

function route_zread_conf(t, ctx)
    t.local_zone = t.local_zone or ctx:local_zone()
    t.failover_id = stat_id(ctx, t, "failovers")
    t.repair_id = stat_id(ctx, t, "repairs")
    return t
end

-- Copies a hit in zone `from` into the zones in `missed`: the exact value,
-- flags and remaining TTL read with a meta get, stored only if absent (a
-- write that landed meanwhile wins).
local function write_back(rctx, arg, key, from, missed)
    local m = rctx:enqueue_and_wait(mcp.request("mg " .. key .. " v f t\r\n"), arg.meta[from])
    if m == nil or not m:hit() then
        return
    end
    local line = m:line() or ""
    local flags = string.match(line, "%f[%w]f(%d+)") or "0"
    local ttl = tonumber(string.match(line, "%f[%w]t(%-?%d+)") or "-1")
    if ttl == 0 then
        return -- expiring this second: not worth a copy
    end
    if ttl < 0 then
        ttl = 0
    end
    local copy = string.format("ms %s %d F%s T%d ME\r\n", key, m:vlen(), flags, ttl)
    local handles = {}
    for _, z in ipairs(missed) do
        table.insert(handles, arg.repair[z])
    end
    rctx:enqueue(mcp.request(copy, m), handles)
    rctx:wait_cond(#handles, mcp.WAIT_ANY)
    mcp.stat(arg.repair_id, #handles)
end

local function zread_f(rctx, arg)
    local n = #arg.names
    local hot = arg.hot_keys
    return function(r)
        local key = r:key()
        local start = 1
        if arg.primary_first then
            start = primary_of(key, n)
        elseif hot[key] then
            start = math.random(n)
        end
        local missed = {}
        local best = nil
        for step = 0, n - 1 do
            local z = ((start - 1 + step) % n) + 1
            if step > 0 then
                mcp.stat(arg.failover_id, 1)
            end
            local res = rctx:enqueue_and_wait(r, arg.read[z])
            if res ~= nil and res:hit() then
                if #missed > 0 and arg.repair_on then
                    write_back(rctx, arg, key, z, missed)
                end
                return res
            end
            if answered(res) then
                table.insert(missed, z)
                best = res
            elseif best == nil then
                best = res
            end
        end
        -- Nothing anywhere: a clean miss if any zone gave one, else the
        -- last error.
        if best == nil then
            return "SERVER_ERROR no zone answered\r\n"
        end
        return best
    end
end

function route_zread_start(a, ctx, fgen)
    local names = zone_order(a.children, a.local_zone)
    local o = {
        names = names, read = {}, meta = {}, repair = {},
        hot_keys = {}, primary_first = a.primary_first,
        repair_on = a.repair ~= false,
        failover_id = a.failover_id, repair_id = a.repair_id,
    }
    for _, key in ipairs(a.hot_keys or {}) do
        o.hot_keys[key] = true
    end
    for i, name in ipairs(names) do
        o.read[i] = fgen:new_handle(a.children[name])
        o.meta[i] = fgen:new_handle(a.children[name])
        o.repair[i] = fgen:new_handle(a.children[name])
    end
    fgen:ready({ a = o, n = ctx:label(), f = zread_f })
end

--
-- route_zmeta_read: meta get; with a lease (N or R) the key's primary
-- zone alone answers (failing over only when it is down), so a stampede
-- gets one winner across replicas; without, as route_zread.
--

function route_zmeta_read_conf(t, ctx)
    return route_zread_conf(t, ctx)
end

function route_zmeta_read_start(a, ctx, fgen)
    local plain = mcp.funcgen_new()
    route_zread_start(a, ctx, plain)
    local names = zone_order(a.children, a.local_zone)
    local lease = {}
    for i, name in ipairs(names) do
        lease[i] = fgen:new_handle(a.children[name])
    end
    local h_plain = fgen:new_handle(plain)
    local n = #names
    fgen:ready({ n = ctx:label(), f = function(rctx)
        return function(r)
            if not (r:has_flag("N") or r:has_flag("R")) then
                return rctx:enqueue_and_wait(r, h_plain)
            end
            local p = primary_of(r:key(), n)
            local res = nil
            for step = 0, n - 1 do
                res = rctx:enqueue_and_wait(r, lease[((p - 1 + step) % n) + 1])
                if answered(res) then
                    return res
                end
            end
            return res or "SERVER_ERROR no zone answered\r\n"
        end
    end })
end

--
-- segcore_cluster{}: the whole configuration from a zone list.
--
--   segcore_cluster{
--       local_zone = "z1",                  -- this proxy's zone
--       zones = { z1 = { "host:port", ... }, z2 = { ... } },
--       hot_keys = { "key", ... },          -- read from any zone
--       hot_keys_file = "/path",            -- more of them, one per line
--       backend_read_timeout = 0.4,         -- seconds; a stalled node's bound
--   }
--
-- Within a zone the keys are spread over its nodes by the pool's hash; a
-- node that is down fails its keys over to the other zones.
--

-- The hot keys: the configured list plus the lines of `hot_keys_file`
-- (written by scripts/tools/proxy-hot-keys.py from the nodes' `stats
-- hotkeys`; a SIGHUP to the proxy rereads it). A missing file is no keys.
local function hot_key_list(c)
    local keys = {}
    for _, key in ipairs(c.hot_keys or {}) do
        table.insert(keys, key)
    end
    local f = c.hot_keys_file and io.open(c.hot_keys_file, "r")
    if f then
        for line in f:lines() do
            if line ~= "" then
                table.insert(keys, line)
            end
        end
        f:close()
    end
    return keys
end

function segcore_cluster(c)
    local hot = hot_key_list(c)
    settings{
        backend_connect_timeout = c.backend_connect_timeout or 1,
        backend_read_timeout = c.backend_read_timeout or 0.4,
        backend_retry_waittime = c.backend_retry_waittime or 1,
        backend_failure_limit = c.backend_failure_limit or 3,
    }
    local zones = {}
    for name, nodes in pairs(c.zones) do
        zones[name] = { backends = nodes }
    end
    pools{ set_zones = zones }
    local_zone(c.local_zone)
    -- One route per command (routelib fills each in place).
    local function write()
        return route_zwrite{ children = "set_zones" }
    end
    local function meta_write()
        return route_zmeta_write{ children = "set_zones" }
    end
    routes{
        cmap = {
            get = route_zread{ children = "set_zones", hot_keys = hot },
            gets = route_zread{ children = "set_zones", primary_first = true },
            mg = route_zmeta_read{ children = "set_zones", hot_keys = hot },
            set = write(), add = write(), replace = write(),
            append = write(), prepend = write(), cas = write(),
            incr = write(), decr = write(), delete = write(), touch = write(),
            gat = write(), gats = write(),
            ms = meta_write(), md = meta_write(), ma = meta_write(),
        },
        default = route_direct{ child = "set_zones_" .. c.local_zone },
    }
end

register_route_handlers({ "zwrite", "zmeta_write", "zread", "zmeta_read" })
