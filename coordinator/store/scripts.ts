// Lua scripts for state changes that must be atomic. Each header documents KEYS and ARGV.

// Every script that changes a pod's state also appends one entry to the change stream, in the
// same atomic step, so a coordinator following the stream (ChangeFeed) misses no change and
// sees them in the order they were made. Such a script takes, after its own KEYS and ARGV:
//   KEYS: the change stream, the change counter
//   ARGV: "tenant/podId", the coordinator that makes the change ("" = none: the CLI), the
//         stream's bound (entries kept, roughly: XADD MAXLEN ~)
// and says so in its header as "+ change KEYS/ARGV at N".

/**
 * Lua: append a change of `kind` of the pod in hash `pod` to the stream: {seq (the counter, so a
 * follower sees a gap), pod, kind, gen (its generation), node (the node it is placed on), obs
 * (the node of what was last observed), by}. Called after the change (for a deletion, before).
 * `k` and `a` are the indexes of the change KEYS and ARGV. A script that has decoded the pod's
 * fields already calls append_change with them instead (the hot ones: placing, reports).
 */
const RECORD_CHANGE = `
local function append_change(k, a, kind, gen, node, obs)
  local seq = redis.call('INCR', KEYS[k + 1])
  redis.call('XADD', KEYS[k], 'MAXLEN', '~', ARGV[a + 2], '*', 'seq', seq, 'pod', ARGV[a], 'kind', kind, 'gen', gen, 'node', node, 'obs', obs, 'by', ARGV[a + 1])
end
local function record_change(pod, k, a, kind)
  local f = redis.call('HMGET', pod, 'desired', 'placement', 'observed')
  local gen, node, obs = '', '', ''
  if f[1] then gen = tostring(cjson.decode(f[1]).generation) end
  if f[2] then node = cjson.decode(f[2]).nodeId end
  if f[3] then obs = cjson.decode(f[3]).nodeId end
  append_change(k, a, kind, gen, node, obs)
end
`;

/**
 * Lua: append `event` (JSON) to a pod's event list `list`, keeping the newest `kept`. The scripts
 * that make a change users see in the pod's events (created, scheduled, a container's phase)
 * write its event in the same step: one round trip, and the events in the order of the changes.
 */
const APPEND_EVENT_FN = `
local function append_event(list, event, kept)
  redis.call('RPUSH', list, event)
  redis.call('LTRIM', list, -tonumber(kept), -1)
end
`;

/**
 * Create a pod if its id is free, with its "created" event.
 * KEYS[1] pod hash, KEYS[2] tenant pod set, KEYS[3] all-pods set, KEYS[4] perms hash, KEYS[5] credentials hash,
 * KEYS[6] the pod's event list
 * ARGV[1] spec JSON, ARGV[2] desired JSON, ARGV[3] pod id, ARGV[4] owner,
 * ARGV[5] user_username, ARGV[6] user_password, ARGV[7] service_password, ARGV[8] the event JSON,
 * ARGV[9] how many events to keep
 * + change KEYS at 7, ARGV at 10 (ARGV[10] is "tenant/podId"); kind "created".
 * Returns 1 when created, 0 when the id is taken.
 */
export const CREATE_POD = RECORD_CHANGE + APPEND_EVENT_FN + `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'spec', ARGV[1], 'desired', ARGV[2])
redis.call('SADD', KEYS[2], ARGV[3])
redis.call('SADD', KEYS[3], ARGV[10])
redis.call('DEL', KEYS[4], KEYS[5])
redis.call('HSET', KEYS[4], ARGV[4], 'ADMIN')
redis.call('HSET', KEYS[5], 'user_username', ARGV[5], 'user_password', ARGV[6], 'service_password', ARGV[7])
append_event(KEYS[6], ARGV[8], ARGV[9])
append_change(7, 10, 'created', tostring(cjson.decode(ARGV[2]).generation), '', '')
return 1`;

/**
 * Give a pod's dedicated-port networking entries a TCP port each, once; returns the pod's
 * ports as JSON ({} when the pod is gone).
 * KEYS[1] pod hash, KEYS[2] ports-in-use hash (port -> "tenant/podId/name")
 * ARGV[1] first port, ARGV[2] last port, ARGV[6..] entry names
 * + change KEYS at 3, ARGV at 3 (ARGV[3] is "tenant/podId"); kind "ports", when a port was given.
 */
export const ALLOCATE_PORTS = RECORD_CHANGE + `
if redis.call('EXISTS', KEYS[1]) == 0 then return '{}' end
local have = redis.call('HGET', KEYS[1], 'ports')
local ports = {}
if have then ports = cjson.decode(have) end
local changed = false
local candidate = tonumber(ARGV[1])
for i = 6, #ARGV do
  local name = ARGV[i]
  if not ports[name] then
    while candidate <= tonumber(ARGV[2]) and redis.call('HEXISTS', KEYS[2], tostring(candidate)) == 1 do candidate = candidate + 1 end
    if candidate > tonumber(ARGV[2]) then return redis.error_reply('PORTS_EXHAUSTED no free TCP port in the configured range') end
    redis.call('HSET', KEYS[2], tostring(candidate), ARGV[3] .. '/' .. name)
    ports[name] = candidate
    changed = true
  end
end
if changed then
  redis.call('HSET', KEYS[1], 'ports', cjson.encode(ports))
  record_change(KEYS[1], 3, 3, 'ports')
end
if next(ports) == nil then return '{}' end
return cjson.encode(ports)`;

/**
 * Give back a pod's dedicated ports.
 * KEYS[1] pod hash, KEYS[2] ports-in-use hash
 * + change KEYS at 3, ARGV at 1; kind "ports", when it had any.
 */
export const RELEASE_PORTS = RECORD_CHANGE + `
local have = redis.call('HGET', KEYS[1], 'ports')
if not have then return 0 end
for _, port in pairs(cjson.decode(have)) do redis.call('HDEL', KEYS[2], tostring(port)) end
redis.call('HDEL', KEYS[1], 'ports')
record_change(KEYS[1], 3, 1, 'ports')
return 1`;

/**
 * Set or remove one user's permission on a pod, volume or snapshot, keeping at least one ADMIN.
 * KEYS[1] the object's record (pod hash, volume or snapshot string), KEYS[2] perms hash
 * ARGV[1] user, ARGV[2] level ("" = remove)
 * Returns 1 when done, 0 when it would leave the object without an ADMIN, -1 when it is gone.
 */
export const SET_PERMISSION = `
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end` + changePermission('ARGV[1]', 'ARGV[2]');

/**
 * The end of SET_PERMISSION and SET_TEMPLATE_PERMISSION: set or remove `user`'s `level` in the
 * perms hash KEYS[2], unless that would take its last ADMIN away (then 0); 1 when done.
 */
function changePermission(user: string, level: string): string {
  return `
local cur = redis.call('HGET', KEYS[2], ${user})
if cur == 'ADMIN' and ${level} ~= 'ADMIN' then
  local admins = 0
  for _, l in ipairs(redis.call('HVALS', KEYS[2])) do
    if l == 'ADMIN' then admins = admins + 1 end
  end
  if admins <= 1 then return 0 end
end
if ${level} == '' then redis.call('HDEL', KEYS[2], ${user}) else redis.call('HSET', KEYS[2], ${user}, ${level}) end
return 1`;
}

/**
 * Add a template if its id is free on the site, with its creator (if any) as ADMIN.
 * KEYS[1] templates hash, KEYS[2] the template's perms hash, KEYS[3] the template's tags list
 * ARGV[1] template id, ARGV[2] record JSON, ARGV[3] the creator ("" = none: a built-in template)
 * Returns 1 when added, 0 when the id is taken.
 */
export const CREATE_TEMPLATE = `
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('DEL', KEYS[2], KEYS[3])
if ARGV[3] ~= '' then redis.call('HSET', KEYS[2], ARGV[3], 'ADMIN') end
return 1`;

/**
 * Set or remove one permission on a template, keeping at least one ADMIN where there was one
 * (built-in templates have none: site admins administer them).
 * KEYS[1] templates hash, KEYS[2] the template's perms hash
 * ARGV[1] template id, ARGV[2] user or TENANT, ARGV[3] level ("" = remove)
 * Returns 1 when done, 0 when it would leave the template without an ADMIN, -1 when it is gone.
 */
export const SET_TEMPLATE_PERMISSION = `
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return -1 end` + changePermission('ARGV[2]', 'ARGV[3]');

/**
 * Add several images to the allow-list at once.
 * KEYS[1] images hash
 * ARGV[1] "1" to skip names already listed, "0" to add nothing when any is; ARGV[2..] name, record JSON, pairs
 * Returns {added names, already listed names}; with ARGV[1] "0" and any already listed, nothing is added.
 */
export const ADD_IMAGES = `
local added, listed = {}, {}
for i = 2, #ARGV, 2 do
  if redis.call('HEXISTS', KEYS[1], ARGV[i]) == 1 then table.insert(listed, ARGV[i]) end
end
if ARGV[1] == '0' and #listed > 0 then return {added, listed} end
for i = 2, #ARGV, 2 do
  if redis.call('HSETNX', KEYS[1], ARGV[i], ARGV[i + 1]) == 1 then table.insert(added, ARGV[i]) end
end
return {added, listed}`;

/**
 * Append an event to a pod's event list, keeping the newest ARGV[2] (one command, not four).
 * KEYS[1] the pod's event list
 * ARGV[1] event JSON, ARGV[2] how many to keep
 */
export const APPEND_EVENT = APPEND_EVENT_FN + `
append_event(KEYS[1], ARGV[1], ARGV[2])
return 1`;

/**
 * Compare-and-set one field of a pod hash (spec or desired); the pod must exist.
 * KEYS[1] pod hash
 * ARGV[1] field, ARGV[2] expected value ("" = field absent), ARGV[3] new value ("" = delete field)
 * + change KEYS at 2, ARGV at 4; kind: the field's name.
 * Returns 1 when set, 0 when the field changed meanwhile, -1 when the pod is gone.
 */
export const CAS_FIELD = RECORD_CHANGE + `
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if cur == false then cur = '' end
if cur ~= ARGV[2] then return 0 end
if ARGV[3] == '' then redis.call('HDEL', KEYS[1], ARGV[1]) else redis.call('HSET', KEYS[1], ARGV[1], ARGV[3]) end
record_change(KEYS[1], 2, 4, ARGV[1])
return 1`;

// A pod placed on a node holds a claim there: the pod hash's `claim` field, JSON {nodeId,
// cpu_milli, memory_mb}, counted in the node's usage hash {cpu_milli, memory_mb, pods}. A claim
// is made only together with the placement, in PLACE_POD (after the fit is checked against the
// usage in the same step, as Nomad's plan applier re-checks a plan), and given back only
// together with it, in UNPLACE_POD or DELETE_POD: the usage is exact whichever coordinator
// placed or removed, and room is free again the moment the placement is.

/** Lua: give back the claim of pod hash `pod` on usage hash `usage` (nothing when it holds none). */
const RELEASE_CLAIM = `
local function release_claim(pod, usage)
  local c = redis.call('HGET', pod, 'claim')
  if not c then return end
  local claim = cjson.decode(c)
  if redis.call('EXISTS', usage) == 1 then
    redis.call('HINCRBY', usage, 'cpu_milli', -claim.cpu_milli)
    redis.call('HINCRBY', usage, 'memory_mb', -claim.memory_mb)
    redis.call('HINCRBY', usage, 'pods', -1)
  end
  redis.call('HDEL', pod, 'claim')
end
`;

/**
 * Place a pod on a node if its requests (read from its spec here) fit in what the node has
 * left; the fit, the claim and the placement are one step, so two coordinators racing for the
 * last room cannot both get it.
 * KEYS[1] pod hash, KEYS[2] the node's pod set, KEYS[3] the node's usage hash, KEYS[4] the pod's event list
 * ARGV[1] placement JSON, ARGV[2] node id, ARGV[3] the node's CPU capacity (milli, overcommit
 * included), ARGV[4] its memory capacity (MiB, likewise), ARGV[5] the "scheduled" event JSON,
 * ARGV[6] how many events to keep
 * + change KEYS at 5, ARGV at 7 (ARGV[7] is "tenant/podId"); kind "placed", when placed.
 * Returns {result, cpu_milli, memory_mb, pods}: the node's usage after the step, and result
 * 1 placed, 0 not placed because the pod is placed already or no longer wants to run, -1 the pod
 * is gone, 2 no room, 3 the node's usage has not been counted yet (pods placed before usage was
 * kept: run RECOUNT_USAGE, then try again).
 */
export const PLACE_POD = RECORD_CHANGE + APPEND_EVENT_FN + `
local f = redis.call('HMGET', KEYS[1], 'desired', 'placement', 'spec', 'observed')
if not f[1] then return {-1, 0, 0, 0} end
if redis.call('EXISTS', KEYS[3]) == 0 then
  if redis.call('SCARD', KEYS[2]) > 0 then return {3, 0, 0, 0} end
  redis.call('HSET', KEYS[3], 'cpu_milli', 0, 'memory_mb', 0, 'pods', 0)
end
local u = redis.call('HMGET', KEYS[3], 'cpu_milli', 'memory_mb', 'pods')
local cpu, mem, pods = tonumber(u[1]) or 0, tonumber(u[2]) or 0, tonumber(u[3]) or 0
if f[2] then return {0, cpu, mem, pods} end
local desired = cjson.decode(f[1])
if desired.deleting or desired.status_requested == 'OFF' then return {0, cpu, mem, pods} end
local res = cjson.decode(f[3]).resources
local want_cpu, want_mem = res.cpu_request, res.mem_request
if cpu + want_cpu > tonumber(ARGV[3]) or mem + want_mem > tonumber(ARGV[4]) then return {2, cpu, mem, pods} end
cpu = redis.call('HINCRBY', KEYS[3], 'cpu_milli', want_cpu)
mem = redis.call('HINCRBY', KEYS[3], 'memory_mb', want_mem)
pods = redis.call('HINCRBY', KEYS[3], 'pods', 1)
redis.call('SADD', KEYS[2], ARGV[7])
redis.call('HSET', KEYS[1], 'placement', ARGV[1], 'claim', cjson.encode({nodeId = ARGV[2], cpu_milli = want_cpu, memory_mb = want_mem}))
append_event(KEYS[4], ARGV[5], ARGV[6])
append_change(5, 7, 'placed', tostring(desired.generation), ARGV[2], f[4] and cjson.decode(f[4]).nodeId or '')
return {1, cpu, mem, pods}`;

/**
 * Count a node's usage once, from the pods in its set (for pods placed before usage was kept:
 * each gets a claim of its spec's requests). Nothing is done when the usage is counted already.
 * KEYS[1] the node's usage hash, KEYS[2] the node's pod set, KEYS[3..] the pod hashes of the
 * set's members, in the order of ARGV[2..]
 * ARGV[1] node id, ARGV[2..] the set's members ("tenant/podId") as read
 * Returns 1 when counted (now or before), 0 when the set changed since it was read.
 */
export const RECOUNT_USAGE = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 1 end
if redis.call('SCARD', KEYS[2]) ~= #ARGV - 1 then return 0 end
for i = 2, #ARGV do
  if redis.call('SISMEMBER', KEYS[2], ARGV[i]) == 0 then return 0 end
end
local cpu, mem, pods = 0, 0, 0
for i = 3, #KEYS do
  local c = redis.call('HGET', KEYS[i], 'claim')
  local claim = nil
  if c then
    claim = cjson.decode(c)
  else
    local spec = redis.call('HGET', KEYS[i], 'spec')
    if spec then
      local res = cjson.decode(spec).resources
      claim = {nodeId = ARGV[1], cpu_milli = res.cpu_request, memory_mb = res.mem_request}
      redis.call('HSET', KEYS[i], 'claim', cjson.encode(claim))
    end
  end
  if claim then
    cpu, mem, pods = cpu + claim.cpu_milli, mem + claim.memory_mb, pods + 1
  end
end
redis.call('HSET', KEYS[1], 'cpu_milli', cpu, 'memory_mb', mem, 'pods', pods)
return 1`;

/**
 * Take a pod off its node (its container is gone, or it moves), giving back its claim there.
 * KEYS[1] pod hash, KEYS[2] the node's pod set, KEYS[3] the node's usage hash
 * ARGV[1] expected placement JSON (on that node)
 * + change KEYS at 4, ARGV at 2 (ARGV[2] is "tenant/podId"); kind "unplaced", its node the one
 * the pod left (which has room again).
 * Returns 1 when done, 0 when the placement changed meanwhile, -1 when the pod is gone.
 */
export const UNPLACE_POD = RELEASE_CLAIM + RECORD_CHANGE + `
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if redis.call('HGET', KEYS[1], 'placement') ~= ARGV[1] then return 0 end
redis.call('SREM', KEYS[2], ARGV[2])
release_claim(KEYS[1], KEYS[3])
record_change(KEYS[1], 4, 2, 'unplaced')
redis.call('HDEL', KEYS[1], 'placement')
return 1`;

/**
 * Record an agent's observation unless it is stale, with the event it makes in the pod's list.
 * It must be for the pod's current uid, from the node the pod is placed on (any other node may
 * only say its container is gone), not for an older instance than what is stored, and not an
 * earlier report of the same instance by the same node than the one stored (`seq`: the order of
 * that agent's reports; two reports sent in order can be stored out of order, say when a script
 * had to be loaded again for the first of them).
 * KEYS[1] pod hash, KEYS[2] the pod's event list
 * ARGV[1] observed JSON; events (JSON, "" for none): ARGV[2] when the phase or the instance
 * changed, ARGV[3] the same when the restart count grew too, ARGV[4] when only the restart count
 * grew; ARGV[5] how many events to keep
 * + change KEYS at 3, ARGV at 6; kind "observed", when stored.
 * Returns {1, desired JSON, placement JSON ("" for none), 1 when the pod has a note (else 0)}
 * when stored, {0} when ignored as stale, {-1} when the pod is gone.
 */
export const SET_OBSERVED = RECORD_CHANGE + APPEND_EVENT_FN + `
local f = redis.call('HMGET', KEYS[1], 'desired', 'placement', 'observed', 'note')
local desired_raw, placement, old = f[1], f[2], f[3]
if not desired_raw then return {-1} end
local new = cjson.decode(ARGV[1])
local desired = cjson.decode(desired_raw)
if desired.uid ~= new.uid then return {0} end
local o = old and cjson.decode(old) or nil
local placed = placement and cjson.decode(placement).nodeId or nil
if placed ~= new.nodeId then
  -- A report from a node the pod is not placed on only counts if it says that node's container is gone.
  if new.phase ~= 'removed' then return {0} end
  if o and o.nodeId ~= new.nodeId then return {0} end
end
if o and o.uid == new.uid then
  if o.generation > new.generation then return {0} end
  if o.generation == new.generation and o.nodeId == new.nodeId and type(o.seq) == 'number' and type(new.seq) == 'number' and new.seq < o.seq then return {0} end
end
redis.call('HSET', KEYS[1], 'observed', ARGV[1])
local restarts_before = (o and type(o.restarts) == 'number') and o.restarts or 0
local restarted = type(new.restarts) == 'number' and new.restarts > restarts_before
local event = ''
if not o or o.phase ~= new.phase or o.generation ~= new.generation then
  event = ARGV[2]
  if restarted and ARGV[3] ~= '' then event = ARGV[3] end
elseif restarted then
  event = ARGV[4]
end
if event ~= '' then append_event(KEYS[2], event, ARGV[5]) end
append_change(3, 6, 'observed', tostring(desired.generation), placed or '', new.nodeId)
return {1, desired_raw, placement or '', f[4] and 1 or 0}`;

/**
 * Append container output for the current run, from the node the pod is placed on, keeping
 * only the newest ARGV[3] bytes. The log is a list of chunks with its byte count beside it,
 * so an append costs the chunk, never the whole log (a 10 MB log rewritten per chunk slowed
 * every other Redis call of the site). Chunks are numbered (seq, never reused within a run:
 * followers resume by it), and a chunk whose key is not newer than the last stored is dropped,
 * so an agent may send a piece again (after a reconnect or a restart) without it showing twice.
 * The log of an earlier instance is kept when a new one starts: its list is renamed to
 * ARGV[8] .. generation and its generation added to the runs list (the newest ARGV[9] kept;
 * older ones are deleted). Those keys are made here from ARGV[8]: one Redis, not a cluster.
 * KEYS[1] pod hash, KEYS[2] logs list, KEYS[3] log meta hash {bytes, trimmed, seq, first, last_key, gen},
 * KEYS[4] runs list (generations of the kept earlier runs, oldest first)
 * ARGV[1] chunk, ARGV[2] "1" to start the run's log afresh, ARGV[3] max bytes, ARGV[4] uid,
 * ARGV[5] generation, ARGV[6] the reporting node, ARGV[7] the chunk's key ("" for none),
 * ARGV[8] the prefix of kept runs' lists, ARGV[9] how many earlier runs to keep
 * Returns the stored length, -1 when the pod is gone or the chunk is from another instance or
 * node, -2 when the chunk was stored before.
 */
export const APPEND_LOGS = `
local d = redis.call('HGET', KEYS[1], 'desired')
if d == false then return -1 end
local desired = cjson.decode(d)
if desired.uid ~= ARGV[4] or tostring(desired.generation) ~= ARGV[5] then return -1 end
local placement = redis.call('HGET', KEYS[1], 'placement')
if placement == false or cjson.decode(placement).nodeId ~= ARGV[6] then return -1 end
local key = ARGV[7]
if ARGV[2] ~= '1' and key ~= '' then
  local last = redis.call('HGET', KEYS[3], 'last_key')
  if last and key <= last then return -2 end
end
local gen = redis.call('HGET', KEYS[3], 'gen')
if gen and gen ~= ARGV[5] and redis.call('TYPE', KEYS[2]).ok == 'list' then
  redis.call('RENAME', KEYS[2], ARGV[8] .. gen)
  redis.call('LREM', KEYS[4], 0, gen)
  redis.call('RPUSH', KEYS[4], gen)
  while redis.call('LLEN', KEYS[4]) > tonumber(ARGV[9]) do
    redis.call('DEL', ARGV[8] .. redis.call('LPOP', KEYS[4]))
  end
end
if ARGV[2] == '1' or redis.call('TYPE', KEYS[2]).ok ~= 'list' or (gen and gen ~= ARGV[5]) then
  local seq = tonumber(redis.call('HGET', KEYS[3], 'seq') or '0')
  redis.call('DEL', KEYS[2], KEYS[3])
  redis.call('HSET', KEYS[3], 'seq', seq, 'first', seq + 1, 'bytes', 0)
end
redis.call('HSETNX', KEYS[3], 'first', 1)
redis.call('HSET', KEYS[3], 'gen', ARGV[5])
local max = tonumber(ARGV[3])
local chunk = ARGV[1]
if string.len(chunk) > max then
  chunk = string.sub(chunk, string.len(chunk) - max + 1)
  redis.call('HSET', KEYS[3], 'trimmed', '1')
end
if string.len(chunk) > 0 then
  redis.call('RPUSH', KEYS[2], chunk)
  redis.call('HINCRBY', KEYS[3], 'seq', 1)
end
if key ~= '' then redis.call('HSET', KEYS[3], 'last_key', key) end
local bytes = redis.call('HINCRBY', KEYS[3], 'bytes', string.len(chunk))
while bytes > max do
  local first = redis.call('LPOP', KEYS[2])
  bytes = redis.call('HINCRBY', KEYS[3], 'bytes', -string.len(first))
  redis.call('HINCRBY', KEYS[3], 'first', 1)
  redis.call('HSET', KEYS[3], 'trimmed', '1')
end
return bytes`;

/**
 * The chunks of a pod's log numbered after ARGV[1], read in one step with their numbering.
 * KEYS[1] logs list, KEYS[2] log meta hash
 * ARGV[1] the last chunk number the reader has (0: none)
 * Returns {first, last, trimmed, gen, chunks...}: the number of the first chunk kept, of the last one,
 * "1" when older output was dropped, the instance the chunks are of ("" if unknown), then the chunks
 * numbered max(after + 1, first) to last.
 */
export const READ_LOGS = `
local first = tonumber(redis.call('HGET', KEYS[2], 'first') or '1')
local last = tonumber(redis.call('HGET', KEYS[2], 'seq') or '0')
local trimmed = redis.call('HGET', KEYS[2], 'trimmed') or '0'
local gen = redis.call('HGET', KEYS[2], 'gen') or ''
local from = math.max(tonumber(ARGV[1]) + 1, first)
local out = {tostring(first), tostring(last), trimmed, gen}
if from <= last and redis.call('TYPE', KEYS[1]).ok == 'list' then
  for _, c in ipairs(redis.call('LRANGE', KEYS[1], from - first, -1)) do table.insert(out, c) end
end
return out`;

/**
 * Delete a pod and everything keyed by it, giving back its dedicated ports and its claim on its node.
 * KEYS[1] pod hash, KEYS[2] tenant set, KEYS[3] all set, KEYS[4] perms, KEYS[5] logs, KEYS[6] actions, KEYS[7] node set (or any key),
 * KEYS[8] credentials, KEYS[9] ports-in-use hash, KEYS[10] log meta, KEYS[11] the node's usage hash (or any key)
 * ARGV[1] pod id, ARGV[2] the node the caller saw it placed on ("" = none)
 * + change KEYS at 12, ARGV at 3 (ARGV[3] is "tenant/podId"); kind "deleted", when it existed,
 * its node the one it was placed on.
 * Returns 1 when deleted (or gone already), 0 when it is placed elsewhere than the caller saw (read it again).
 */
export const DELETE_POD = RELEASE_CLAIM + RECORD_CHANGE + `
local placement = redis.call('HGET', KEYS[1], 'placement')
local placed = placement and cjson.decode(placement).nodeId or ''
if placed ~= ARGV[2] then return 0 end
if redis.call('EXISTS', KEYS[1]) == 1 then record_change(KEYS[1], 12, 3, 'deleted') end
if placed ~= '' then release_claim(KEYS[1], KEYS[11]) end
local have = redis.call('HGET', KEYS[1], 'ports')
if have then
  for _, port in pairs(cjson.decode(have)) do redis.call('HDEL', KEYS[9], tostring(port)) end
end
redis.call('DEL', KEYS[1], KEYS[4], KEYS[5], KEYS[6], KEYS[8], KEYS[10])
redis.call('SREM', KEYS[2], ARGV[1])
redis.call('SREM', KEYS[3], ARGV[3])
if placed ~= '' then redis.call('SREM', KEYS[7], ARGV[3]) end
return 1`;

/**
 * Create a volume or snapshot if its id is free, its creator as ADMIN.
 * KEYS[1] record string, KEYS[2] tenant id set, KEYS[3] perms hash
 * ARGV[1] record JSON, ARGV[2] id, ARGV[3] owner
 * Returns 1 when created, 0 when the id is taken.
 */
export const CREATE_SHARE = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SADD', KEYS[2], ARGV[2])
redis.call('DEL', KEYS[3])
redis.call('HSET', KEYS[3], ARGV[3], 'ADMIN')
return 1`;

/**
 * Replace a volume or snapshot record if it is unchanged since it was read.
 * KEYS[1] record string
 * ARGV[1] expected JSON, ARGV[2] new JSON
 * Returns 1 when set, 0 when it changed meanwhile, -1 when it is gone.
 */
export const CAS_SHARE = `
local cur = redis.call('GET', KEYS[1])
if cur == false then return -1 end
if cur ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
return 1`;

/**
 * Delete a volume or snapshot record and its permissions.
 * KEYS[1] record string, KEYS[2] tenant id set, KEYS[3] perms hash, KEYS[4] scheduled-snapshots set
 * ARGV[1] id, ARGV[2] "tenant/id"
 */
export const DELETE_SHARE = `
redis.call('DEL', KEYS[1], KEYS[3])
redis.call('SREM', KEYS[2], ARGV[1])
redis.call('SREM', KEYS[4], ARGV[2])
return 1`;

/**
 * Say why a pod waits, on a pod that still exists.
 * KEYS[1] pod hash
 * ARGV[1] the note
 */
export const SET_NOTE = `
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], 'note', ARGV[1]) end
return 1`;

/**
 * Record the host that holds a pod's data directory; the first one written stays.
 * KEYS[1] pod hash
 * ARGV[1] node id
 */
export const SET_HOME = `
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSETNX', KEYS[1], 'home', ARGV[1]) end
return 1`;

/**
 * Replace one field of a hash if it is unchanged since it was read.
 * KEYS[1] hash
 * ARGV[1] field, ARGV[2] expected value, ARGV[3] new value
 * Returns 1 when set, 0 when it changed meanwhile, -1 when it is gone.
 */
export const CAS_HASH_FIELD = `
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if cur == false then return -1 end
if cur ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1`;

/**
 * Take or renew the lease on a node's link for one holder (a coordinator's link), named
 * "coordinator/run/link". Taking also succeeds over a lease of the same coordinator's: it has
 * no link for the node now, so that lease is left from before it restarted.
 * KEYS[1] lease string
 * ARGV[1] holder, ARGV[2] ttl ms, ARGV[3] "1" to take it when free, "0" to renew only, ARGV[4] the coordinator
 * Returns "" when held by the caller now, else the other holder (or "gone" when a renewal found none).
 */
export const NODE_LINK_LEASE = `
local cur = redis.call('GET', KEYS[1])
local mine = ARGV[3] == '1' and cur and string.sub(cur, 1, string.len(ARGV[4]) + 1) == ARGV[4] .. '/'
if cur and cur ~= ARGV[1] and not mine then return cur end
if not cur and ARGV[3] ~= '1' then return 'gone' end
redis.call('SET', KEYS[1], ARGV[1], 'PX', tonumber(ARGV[2]))
return ''`;

/**
 * Give up a node link's lease if the caller still holds it.
 * KEYS[1] lease string
 * ARGV[1] holder
 */
export const NODE_LINK_RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1`;
