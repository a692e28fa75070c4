-- Near-duplicate and story assignment of one article, atomically with keeping it (ingest.dedup explains the
-- method; ingest.stores.redis.RedisStoryStore calls this). Redis runs a script alone, so two workers given
-- copies of one story at the same time cannot both start a story.
--
-- Keys (all under one hash tag, so a Redis Cluster keeps them in one slot), one set per day:
--   P:r:<day>             string: the records of the articles kept that day, end to end (ids, story,
--                         keywords); an article is known by its record's offset, so it costs no key of its own
--   P:f:<day>:<bucket>    hash: fingerprint (its bucket's share of it) → the offsets of the last max_postings
--                         articles kept with it that day (4 bytes each)
--   P:k:<day>:<bucket>    hash: keyword → the same
-- A day's keys are written on that day only and expire after the window, so memory follows the window.
--
-- ARGV: prefix, article id, today (days since 1970), window days, ttl seconds, buckets per day, number of
-- fingerprints, number of keywords, keywords looked up, signature (Signature.packed), min shared
-- fingerprints, duplicate containment, story similarity, max postings, max candidates, insert (1/0), for
-- an update of an article kept before, the story it stays in ("" otherwise), the article's publication day
-- (days since 1970, 0 unknown), the most days apart two articles of one story may be published, the
-- article's site (a 16-bit hash of its host, 0 unknown) and what the cosine loses between two articles of one
-- site.
-- Returns {kind, story id, duplicate of or "", score as a string}.

local P = ARGV[1]
local aid = ARGV[2]
local today = tonumber(ARGV[3])
local window = tonumber(ARGV[4])
local ttl = tonumber(ARGV[5])
local buckets = tonumber(ARGV[6])
local nfp = tonumber(ARGV[7])
local nkw = tonumber(ARGV[8])
local nposted = math.min(tonumber(ARGV[9]), nkw)
local blob = ARGV[10]
local min_shared = tonumber(ARGV[11])
local containment = tonumber(ARGV[12])
local story_similarity = tonumber(ARGV[13])
local max_postings = tonumber(ARGV[14])
local max_candidates = tonumber(ARGV[15])
local insert = ARGV[16] == "1"
local kept_story = ARGV[17] or ""
local updating = kept_story ~= ""
local pub_day = tonumber(ARGV[18] or "0")
local story_days = tonumber(ARGV[19] or "0")
local site = tonumber(ARGV[20] or "0")
local same_site_penalty = tonumber(ARGV[21] or "0")

local DAY = 4294967296 -- an article's number: day * DAY + offset of its record in that day's string
local call = redis.call

-- struct formats of n offsets (postings) or n (keyword, weight) pairs (records), made once
local offsets_format, keywords_format = {}, {}
local function offsets_of(v)
  local n = #v / 4
  local f = offsets_format[n]
  if not f then f = ">" .. string.rep("I4", n); offsets_format[n] = f end
  return {struct.unpack(f, v)}, n
end
local function keywords_of(raw, n)
  local f = keywords_format[n]
  if not f then f = ">" .. string.rep("I4B", n); keywords_format[n] = f end
  return {struct.unpack(f, raw)}
end

-- Ids that are lowercase hex (the pipeline's article ids) are kept as bytes, half the size.
local function pack_id(id)
  if #id > 0 and #id % 2 == 0 and #id <= 254 and not string.find(id, "[^0-9a-f]") then
    return string.char(128 + #id / 2) .. (string.gsub(id, "..", function(h) return string.char(tonumber(h, 16)) end))
  end
  return string.char(#id) .. id
end

-- an id as pack_id made it (its length byte included) and the position after it
local function packed_at(raw, p)
  local n = string.byte(raw, p)
  if n >= 128 then n = n - 128 end
  return string.sub(raw, p, p + n), p + 1 + n
end

local function unpack_id(packed)
  local n = string.byte(packed, 1)
  if n >= 128 then
    return (string.gsub(string.sub(packed, 2), ".", function(c) return string.format("%02x", string.byte(c)) end))
  end
  return string.sub(packed, 2)
end

local fps = offsets_of(string.sub(blob, 1, 4 * nfp))
local kw_part = string.sub(blob, 4 * nfp + 1)
local kwv = keywords_of(kw_part, nkw)
local kws, weights = {}, {}
local norm = 0
for i = 1, nkw do
  local k, w = kwv[2 * i - 1], kwv[2 * i]
  kws[i] = k
  weights[k] = w
  norm = norm + w * w
end
norm = math.sqrt(norm)

local day_prefix = {}
for day = today - window, today do
  day_prefix[day] = {f = P .. ":f:" .. day .. ":", k = P .. ":k:" .. day .. ":"}
end

local function field(h)
  return string.format("%d", math.floor(h / buckets))
end

-- today's postings of each hash looked up, so that keeping the article need not read them again
local today_values = {f = {}, k = {}}

-- article number → how many of the hashes it was posted under, over the window's days
local function postings(kind, hashes, count, into)
  local seen_today = today_values[kind]
  for i = 1, count do
    local h = hashes[i]
    local f = field(h)
    local bucket = h % buckets
    for day = today - window, today do
      local v = call("HGET", day_prefix[day][kind] .. bucket, f)
      if day == today then seen_today[h] = v or false end
      if v then
        local offsets, count = offsets_of(v)
        local base = day * DAY
        for j = 1, count do
          local n = base + offsets[j]
          into[n] = (into[n] or 0) + 1
        end
      end
    end
  end
end

-- Records: >I2 length of the rest, the article id, story id (empty: the article's own), duplicate_of
-- (empty: none), >BB fingerprints and keywords counted, the keywords as in Signature.packed, then >I2 the
-- publication day and >I2 the site (records written before these were kept end earlier: unknown).
local self_id = pack_id(aid)
local records = {}
local function record(n)
  if records[n] == nil then
    local day = math.floor(n / DAY)
    local offset = n - day * DAY
    local key = P .. ":r:" .. day
    local raw = call("GETRANGE", key, offset, offset + 255)
    if #raw < 2 then
      records[n] = false
    else
      local len = struct.unpack(">I2", raw)
      if len + 2 > #raw then
        raw = call("GETRANGE", key, offset, offset + len + 1)
      end
      local r = {n = n}
      local p = 3
      r.aid, p = packed_at(raw, p)
      r.sid, p = packed_at(raw, p)
      if r.sid == "\0" then r.sid = r.aid end
      r.dup, p = packed_at(raw, p)
      r.nfp, r.nkw, p = struct.unpack(">BB", raw, p)
      r.kw_part = string.sub(raw, p, p + 5 * r.nkw - 1)
      p = p + 5 * r.nkw
      r.day, r.site = 0, 0
      if p + 3 <= len + 2 then
        r.day, r.site = struct.unpack(">I2I2", raw, p)
      elseif p + 1 <= len + 2 then
        r.day = struct.unpack(">I2", raw, p)
      end
      records[n] = r
    end
  end
  return records[n]
end

-- whether a record was published too far from the article to tell the same event (both days known)
local function too_far(r)
  return pub_day > 0 and r.day > 0 and math.abs(r.day - pub_day) > story_days
end

-- weighted cosine of a record's keywords with the article's, less the penalty when both are of one site
local function similarity(r)
  local v = keywords_of(r.kw_part, r.nkw)
  local dot, rnorm = 0, 0
  for i = 1, 2 * r.nkw, 2 do
    local w = v[i + 1]
    rnorm = rnorm + w * w
    local mine = weights[v[i]]
    if mine then dot = dot + w * mine end
  end
  if norm == 0 or rnorm == 0 then return 0 end
  local sim = dot / (norm * math.sqrt(rnorm))
  if site > 0 and r.site == site then sim = sim - same_site_penalty end
  return sim
end

local function again(r)
  return {"again", unpack_id(r.sid), unpack_id(r.dup), "1"}
end

-- the up to max_candidates numbers with the most hits, the oldest first among equals (the order they are
-- compared in does not matter: the best is the most similar, then the oldest)
local function top(hits)
  local count = {}
  for _, h in pairs(hits) do count[h] = (count[h] or 0) + 1 end
  local level, above = 0, 0
  for h = nposted, 1, -1 do
    local c = count[h]
    if c then
      if above + c > max_candidates then level = h break end
      above = above + c
    end
  end
  -- all the numbers with more hits than `level` (all of them when it is 0), then the oldest with `level`
  local chosen, edge = {}, {}
  for n, h in pairs(hits) do
    if h > level then chosen[#chosen + 1] = n elseif h == level then edge[#edge + 1] = n end
  end
  if level > 0 then
    table.sort(edge)
    for i = 1, max_candidates - #chosen do chosen[#chosen + 1] = edge[i] end
  end
  return chosen
end

-- The earlier article this text is the nearest near-verbatim copy of (its number), and the containment; or
-- this article's own record when one is among those sharing the fingerprints (of this very text, for an
-- update): then this is a retry.
local fp_hits = {}
postings("f", fps, nfp, fp_hits)
local function copy_of()
  local best, best_c = nil, 0
  for n, hits in pairs(fp_hits) do
    if hits >= min_shared or (updating and hits == nfp) then
      local r = record(n)
      if r then
        if r.aid == self_id then
          if not updating or (hits == nfp and r.nfp == nfp and r.kw_part == kw_part) then return nil, 0, r end
        elseif hits >= min_shared then
          local c = hits / math.min(nfp, r.nfp)
          if c >= containment and (c > best_c or (c == best_c and n < best)) then best, best_c = n, c end
        end
      end
    end
  end
  return best, best_c, nil
end

local kind, story, dup, score = "new", aid, "", 0
local best, own
best, score, own = copy_of()
if own then
  return again(own)
end
if updating then
  -- An update stays in its story; it is a copy of an earlier article or not as its new text is. A retry of an
  -- update with no fingerprints finds its record by the keywords.
  if nfp == 0 then
    local kw_hits = {}
    postings("k", kws, nposted, kw_hits)
    for _, n in ipairs(top(kw_hits)) do
      local r = record(n)
      if r and r.aid == self_id and r.nfp == nfp and r.kw_part == kw_part then return again(r) end
    end
  end
  kind, story = "updated", kept_story
  if best then dup = unpack_id(records[best].aid) end
elseif best then
  local r = records[best]
  kind, story, dup = "duplicate", unpack_id(r.sid), unpack_id(r.aid)
else
  -- the same story in other words
  local kw_hits = {}
  postings("k", kws, nposted, kw_hits)
  local best_sim, best_r = 0, nil
  for _, n in ipairs(top(kw_hits)) do
    local r = record(n)
    if r then
      if r.aid == self_id then
        return again(r)
      end
      local sim = too_far(r) and 0 or similarity(r)
      if sim > best_sim or (sim == best_sim and best_r and n < best_r.n) then best_sim, best_r = sim, r end
    end
  end
  if best_r and best_sim >= story_similarity then
    kind, story, score = "story", unpack_id(best_r.sid), best_sim
  end
end

if insert then
  local body = self_id .. (story == aid and string.char(0) or pack_id(story)) .. pack_id(dup)
    .. struct.pack(">BB", nfp, nkw) .. kw_part .. struct.pack(">I2I2", pub_day, site)
  local rkey = P .. ":r:" .. today
  local offset = call("APPEND", rkey, struct.pack(">I2", #body) .. body) - #body - 2
  call("EXPIRE", rkey, ttl, "NX")
  local enc = struct.pack(">I4", offset)
  local function post(kind, h)
    local key = day_prefix[today][kind] .. (h % buckets)
    local f = field(h)
    local v = today_values[kind][h]
    if v == nil then v = call("HGET", key, f) end
    if v then
      v = v .. enc
      if #v > 4 * max_postings then v = string.sub(v, #v - 4 * max_postings + 1) end
      call("HSET", key, f, v)
    else
      call("HSET", key, f, enc)
      call("EXPIRE", key, ttl, "NX") -- a new field may be a new key
    end
  end
  for i = 1, nfp do post("f", fps[i]) end
  for i = 1, nposted do post("k", kws[i]) end
end
return {kind, story, dup, tostring(score)}
