-- segcore behind memcached's proxy: two zones (racks, AZs) of three nodes,
-- each key stored once per zone. Started as
--
--   memcached -p 11211 -t 4 -u memcache \
--     -o proxy_config=routelib:/usr/share/segcore/proxy/segcore-routes.lua,proxy_arg=/etc/segcore/cluster.lua
--
-- with this file as proxy_arg; run one proxy per zone, each with its own
-- local_zone, and point that zone's clients at it. What each part does
-- and the consistency model are in segcore-routes.lua and docs/deploy.md.
segcore_cluster{
    -- This proxy's zone: reads go here first.
    local_zone = "z1",
    -- Every zone holds every key; within a zone the keys are spread over
    -- its nodes (add nodes to a zone to add memory, zones to add copies).
    zones = {
        z1 = { "10.0.1.1:11211", "10.0.1.2:11211", "10.0.1.3:11211" },
        z2 = { "10.0.2.1:11211", "10.0.2.2:11211", "10.0.2.3:11211" },
    },
    -- Keys whose reads are spread over every zone's copy (a hot key caps
    -- one node otherwise); `stats hotkeys` on the nodes names them.
    hot_keys = {},
    -- More hot keys, one per line, written by
    -- scripts/tools/proxy-hot-keys.py from the nodes' `stats hotkeys`
    -- (it sends the proxy SIGHUP, which rereads this configuration).
    hot_keys_file = "/etc/segcore/hot-keys",
    -- A node that does not answer within this many seconds counts as failed
    -- for the request: reads move to the next zone, writes answer
    -- SERVER_ERROR.
    backend_read_timeout = 0.4,
}
