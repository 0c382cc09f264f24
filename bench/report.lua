-- Prints the tables of bench/run. Usage: lua5.4 report.lua CASES RESULTS
-- CASES: lines `workload|group|label|ref|base`, in display order; `ref` may
-- name several rows, separated by `&` (one ratio column each); `@base` among
-- them asks for a ÷base column: the ratio to the row's twin of another build
-- (same label with ` (base)`, from `bench/run -b`).
-- RESULTS: lines `workload|group|label|key|value` (one per printed value of
-- one run; key `fail` marks a failed run).
local casesfile, resultsfile = ...

local function split(line)
	local fields = {}
	for field in (line .. "|"):gmatch("([^|]*)|") do fields[#fields + 1] = field end
	return fields
end

-- workloads[i] = { name, groups = { { name, rows = { row... } } } }
local workloads, rowof = {}, {}
for line in io.lines(casesfile) do
	local w, g, label, ref, base = table.unpack(split(line))
	local wl = workloads[#workloads]
	if not wl or wl.name ~= w then
		wl = { name = w, groups = {} }
		workloads[#workloads + 1] = wl
	end
	local grp = wl.groups[#wl.groups]
	if not grp or grp.name ~= g then
		grp = { name = g, rows = {}, bylabel = {} }
		wl.groups[#wl.groups + 1] = grp
	end
	local refs, vsbase = {}, false
	for name in ref:gmatch("[^&]+") do
		if name == "@base" then vsbase = true else refs[#refs + 1] = name end
	end
	local row = { label = label, refs = refs, base = base, values = {}, fails = 0, vsbase = vsbase }
	grp.rows[#grp.rows + 1], grp.bylabel[label] = row, row
	rowof[w .. "|" .. g .. "|" .. label] = row
end

for line in io.lines(resultsfile) do
	local w, g, label, key, value = table.unpack(split(line))
	local row = assert(rowof[w .. "|" .. g .. "|" .. label], line)
	if key == "fail" then
		row.fails = row.fails + 1
	else
		local list = row.values[key] or {}
		row.values[key] = list
		list[#list + 1] = tonumber(value)
	end
end

local function median(list)
	if not list or #list == 0 then return nil end
	table.sort(list)
	local n = #list
	if n % 2 == 1 then return list[(n + 1) // 2] end
	return (list[n // 2] + list[n // 2 + 1]) / 2
end

local function fmt(f, v) return v and string.format(f, v) or "-" end

-- Columns: title and a function of (row, group, i) giving the cell text. A
-- column with `only` is shown for those workloads only, one with `skip` for
-- the others. A `ref` column is repeated for each ref row i of the rows
-- (1, 2… in the order of their `ref` field); its title is its `title`
-- (default "÷") followed by the name of the ref row.
local function med(row, key) return median(row.values[key]) end
local function ratio(key)
	return function(row, grp, i)
		local ref = grp.bylabel[row.refs[i]]
		local a, b = med(row, key), ref and med(ref, key)
		return fmt("%.2f", a and b and a / b)
	end
end
local function medcol(key, f)
	return function(r) return fmt(f, med(r, key)) end
end
local COLUMNS = {
	{ key = "secs", title = "secs", cell = medcol("secs", "%.3f") },
	{ key = "secs", title = "spread", cell = function(r)
		-- (max - min) / median of the runs: how noisy the median is
		local l, m = r.values.secs, med(r, "secs")
		if not m or #l < 2 then return "-" end
		return string.format("%.0f%%", (l[#l] - l[1]) / m * 100)
	end },
	{ key = "secs", ref = true, cell = ratio("secs") },
	-- bench/run -b: this row's secs ÷ those of its twin in the base build
	{ key = "secs", vsbase = true, title = "÷base", cell = function(row, grp)
		local twin = grp.bylabel[row.label:gsub(" %(base%)$", "") .. " (base)"]
		local a, b = med(row, "secs"), twin and med(twin, "secs")
		return fmt("%.2f", a and b and a / b)
	end },
	-- copy, smallops: the ref's median secs ÷ this row's, i.e. how many
	-- times the ref's speed
	{ key = "secs", ref = true, title = "speed ×",
		only = { copy = true, smallops = true, spawn = true, pipe = true, signals = true,
			pingpong = true, pooltasks = true, speedup = true },
		cell = function(row, grp, i)
			local ref = grp.bylabel[row.refs[i]]
			local a, b = med(row, "secs"), ref and med(ref, "secs")
			return fmt("%.2f", a and b and b / a)
		end },
	-- tcp: the time measured inside the process (by the native reference
	-- too): from before listening to the end of the loop
	{ key = "inner", title = "inner", cell = medcol("inner", "%.3f") },
	{ key = "bytes", title = "MiB/s", cell = function(r)
		local s, b = med(r, "secs"), med(r, "bytes")
		return fmt("%.0f", s and b and b / s / 2 ^ 20)
	end },
	{ key = "rsecs", title = "in read", cell = medcol("rsecs", "%.3f") },
	{ key = "wsecs", title = "in write", cell = medcol("wsecs", "%.3f") },
	{ key = "ops", title = "ops/s", only = { smallops = true, spawn = true, signals = true,
		pingpong = true, pooltasks = true }, cell = function(r)
		local s, ops = med(r, "secs"), med(r, "ops")
		return fmt("%.0f", s and ops and ops / s)
	end },
	{ key = "ops", title = "ns/op", skip = { ["tcp-10k"] = true }, cell = function(r)
		local s, ops = med(r, "secs"), med(r, "ops")
		return fmt("%.0f", s and ops and s / ops * 1e9)
	end },
	{ key = "setup", title = "setup", cell = medcol("setup", "%.3f") },
	{ key = "setup", ref = true, cell = ratio("setup") },
	-- tcp-10k: the echo phase (setup above), round trips per second in it
	{ key = "echo", title = "echo", cell = medcol("echo", "%.3f") },
	{ key = "echo", ref = true, cell = ratio("echo") },
	{ key = "echo", title = "msgs/s", only = { ["tcp-10k"] = true }, cell = function(r)
		local s, ops = med(r, "echo"), med(r, "ops")
		return fmt("%.0f", s and ops and ops / s)
	end },
	{ key = "over", title = "over 1s", cell = medcol("over", "%.3f") },
	{ key = "over", ref = true, cell = ratio("over") },
	{ key = "kib", title = "peak KiB", cell = medcol("kib", "%d") },
	{ key = "kib", base = true, title = "KiB/co over bare", cell = function(r, grp)
		local base = grp.bylabel[r.base]
		local k, b, n = med(r, "kib"), base and med(base, "kib"), med(r, "count")
		return fmt("%.3f", k and b and n and (k - b) / n)
	end },
	{ key = "kibconn", title = "KiB/conn", cell = medcol("kibconn", "%.2f") },
}

local function width(s) return utf8.len(s) or #s end
local function pad(s, w, left)
	local fill = string.rep(" ", w - width(s))
	return left and s .. fill or fill .. s
end

for _, wl in ipairs(workloads) do
	for _, grp in ipairs(wl.groups) do
		-- keep the columns some row of this group has data (or a ref/base)
		-- for; a ref column once per ref row
		local refnames = {}
		for _, row in ipairs(grp.rows) do
			if #row.refs > #refnames then refnames = row.refs end
		end
		local cols = {}
		for _, col in ipairs(COLUMNS) do
			local shown = not (col.only and not col.only[wl.name] or col.skip and col.skip[wl.name])
			for i = 1, col.ref and #refnames or 1 do
				local used = false
				for _, row in ipairs(shown and grp.rows or {}) do
					if row.values[col.key] and (not col.ref or row.refs[i])
						and (not col.base or row.base ~= "") and (not col.vsbase or row.vsbase) then
						used = true
					end
				end
				if used then cols[#cols + 1] = { col = col, i = i } end
			end
		end
		local header = { "implementation" }
		for _, c in ipairs(cols) do
			header[#header + 1] = c.col.ref and (c.col.title or "÷") .. refnames[c.i] or c.col.title
		end
		local lines = { header }
		for _, row in ipairs(grp.rows) do
			local cells = { row.label }
			for _, c in ipairs(cols) do cells[#cells + 1] = c.col.cell(row, grp, c.i) end
			if row.fails > 0 then cells[#cells + 1] = row.fails .. " run(s) FAILED" end
			lines[#lines + 1] = cells
		end
		local widths = {}
		for _, cells in ipairs(lines) do
			for i, c in ipairs(cells) do widths[i] = math.max(widths[i] or 0, width(c)) end
		end
		print(string.format("== %s: %s", wl.name, grp.name))
		for _, cells in ipairs(lines) do
			local out = {}
			for i, c in ipairs(cells) do out[i] = pad(c, widths[i], i == 1 or i > #cols + 1) end
			print((table.concat(out, "  "):gsub("%s+$", "")))
		end
		print()
	end
end
