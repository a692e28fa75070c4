-- Near-duplicate and story assignment of one article, atomically with keeping it (ingest.dedup explains the
-- method; ingest.stores.redis.RedisStoryStore calls this). Redis runs a script alone, so two workers given
-- copies of one story at the same time cannot both start a story.
--
-- Keys (all under one hash tag, so a Redis Cluster keeps them in one slot):
--   P:seq                 counter: a short number per kept article
--   P:r:<seq>             the article's record (ids, story, signature), expires after the window
--   P:f:<day>:<bucket>    hash: fingerprint → the last max_postings article numbers (4 bytes each) that day
--   P:k:<day>:<bucket>    hash: keyword → the same
-- Day keys are written on their day only and expire after the window, so memory follows the window.
--
-- ARGV: prefix, article id, today (days since 1970), window days, ttl seconds, buckets per day, number of
-- fingerprints, number of keywords, keywords looked up, signature (Signature.packed), min shared
-- fingerprints, duplicate containment, story similarity, max postings, max candidates, insert (1/0).
-- Returns {kind, story id, duplicate of or "", score as a string}.

local P = ARGV[1]
local aid = ARGV[2]
local today = tonumber(ARGV[3])
local window = tonumber(ARGV[4])
local ttl = tonumber(ARGV[5])
local buckets = tonumber(ARGV[6])
local nfp = tonumber(ARGV[7])
local nkw = tonumber(ARGV[8])
local nposted = tonumber(ARGV[9])
local blob = ARGV[10]
local min_shared = tonumber(ARGV[11])
local containment = tonumber(ARGV[12])
local story_similarity = tonumber(ARGV[13])
local max_postings = tonumber(ARGV[14])
local max_candidates = tonumber(ARGV[15])
local insert = ARGV[16] == "1"

local fps = {}
local pos = 1
for i = 1, nfp do
  fps[i], pos = struct.unpack(">I4", blob, pos)
end
local kws, weights = {}, {}
local norm = 0
for i = 1, nkw do
  local k, w
  k, w, pos = struct.unpack(">I4B", blob, pos)
  kws[i] = k
  weights[k] = w
  norm = norm + w * w
end
norm = math.sqrt(norm)

local function bucket_key(kind, day, h)
  return P .. ":" .. kind .. ":" .. day .. ":" .. (h % buckets)
end

-- article number → how many of the hashes it was posted under, over the window's days
local function postings(kind, hashes, count, into)
  for i = 1, count do
    local h = hashes[i]
    local field = string.format("%d", h)
    for day = today - window, today do
      local v = redis.call("HGET", bucket_key(kind, day, h), field)
      if v then
        for j = 1, #v, 4 do
          local seq = struct.unpack(">I4", v, j)
          into[seq] = (into[seq] or 0) + 1
        end
      end
    end
  end
end

local records = {}
local function record(seq)
  if records[seq] == nil then
    local raw = redis.call("GET", P .. ":r:" .. seq)
    if not raw then
      records[seq] = false
    else
      local r = {}
      local p = 1
      local n
      n, p = struct.unpack(">B", raw, p)
      r.aid = string.sub(raw, p, p + n - 1); p = p + n
      n, p = struct.unpack(">B", raw, p)
      r.sid = string.sub(raw, p, p + n - 1); p = p + n
      n, p = struct.unpack(">B", raw, p)
      r.dup = string.sub(raw, p, p + n - 1); p = p + n
      r.nfp, r.nkw, p = struct.unpack(">BB", raw, p)
      r.kw = {}
      r.norm = 0
      for _ = 1, r.nkw do
        local k, w
        k, w, p = struct.unpack(">I4B", raw, p)
        r.kw[k] = w
        r.norm = r.norm + w * w
      end
      r.norm = math.sqrt(r.norm)
      records[seq] = r
    end
  end
  return records[seq]
end

local function again(r)
  return {"again", r.sid, r.dup, "1"}
end

-- near-verbatim copies
local kind, story, dup, score = "new", aid, "", 0
local fp_hits = {}
postings("f", fps, nfp, fp_hits)
local best_seq = nil
for seq, hits in pairs(fp_hits) do
  if hits >= min_shared then
    local r = record(seq)
    if r then
      if r.aid == aid then
        return again(r)
      end
      local c = hits / math.min(nfp, r.nfp)
      if c >= containment and (c > score or (c == score and seq < best_seq)) then
        best_seq, score = seq, c
      end
    end
  end
end
if best_seq then
  local r = record(best_seq)
  kind, story, dup = "duplicate", r.sid, r.aid
else
  -- the same story in other words
  local kw_hits = {}
  postings("k", kws, math.min(nposted, nkw), kw_hits)
  local ranked = {}
  for seq, hits in pairs(kw_hits) do
    ranked[#ranked + 1] = {seq, hits}
  end
  table.sort(ranked, function(a, b)
    if a[2] ~= b[2] then return a[2] > b[2] end
    return a[1] < b[1]
  end)
  local best_sim, best_r = 0, nil
  for i = 1, math.min(#ranked, max_candidates) do
    local r = record(ranked[i][1])
    if r then
      if r.aid == aid then
        return again(r)
      end
      local dot = 0
      for k, w in pairs(weights) do
        local other = r.kw[k]
        if other then dot = dot + w * other end
      end
      local sim = 0
      if norm > 0 and r.norm > 0 then sim = dot / (norm * r.norm) end
      if sim > best_sim then best_sim, best_r = sim, r end
    end
  end
  if best_r and best_sim >= story_similarity then
    kind, story, score = "story", best_r.sid, best_sim
  end
end

if insert then
  local seq = redis.call("INCR", P .. ":seq")
  local rec = struct.pack(">B", #aid) .. aid .. struct.pack(">B", #story) .. story .. struct.pack(">B", #dup) .. dup
    .. struct.pack(">BB", nfp, nkw) .. string.sub(blob, 4 * nfp + 1)
  redis.call("SET", P .. ":r:" .. seq, rec, "EX", ttl)
  local enc = struct.pack(">I4", seq)
  local function post(kindkey, h)
    local key = bucket_key(kindkey, today, h)
    local field = string.format("%d", h)
    local v = redis.call("HGET", key, field)
    if v then
      v = v .. enc
      if #v > 4 * max_postings then v = string.sub(v, #v - 4 * max_postings + 1) end
    else
      v = enc
    end
    redis.call("HSET", key, field, v)
    redis.call("EXPIRE", key, ttl, "NX")
  end
  for i = 1, nfp do post("f", fps[i]) end
  for i = 1, math.min(nposted, nkw) do post("k", kws[i]) end
end
return {kind, story, dup, tostring(score)}
