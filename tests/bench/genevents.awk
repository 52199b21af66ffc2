# genevents.awk: N realistic JupyterLab cell events, reproducible from a seed,
# for the batch-commit benchmark. Run with LC_ALL=C (lengths are in bytes).
#
#   awk -v n=N [-v seed=S] [-v idprefix=P] [-v stream=KEY] -v copy=FILE \
#       -f genevents.awk
#     stdout: one XADD KEY * event JSON a row, in the Redis protocol (RESP),
#             for `redis-cli --pipe`; JSON is the event as ingest stamps it
#             (classId, studentId and receivedAt added).
#     FILE:   the same rows as batch-commit writes them to the events table,
#             in COPY text format, for psql's \copy with the columns
#             class_id, student_id, event_id, event_type, event_time,
#             received_at, session_id, notebook_path, cell_id, cell_index,
#             cell_type, execution_count, has_error, execution_duration_ms,
#             payload
#   awk -v n=N -v mode=client [-v idprefix=P] -f genevents.awk
#     stdout: NDJSON, one event a line as a client posts it (no stamps).
#
# 200 students in 5 classes of 40; mostly cell_executed, about 7% of them
# failing; cell code of 1 to 30 lines with quotes, backslashes, tabs and
# non-ASCII text. About 450 bytes an event as a client posts it and 550 as
# ingest stamps it: with every field of DESIGN.md present it can hardly be
# less. eventIds are unique (the row number is in the last 12 hex digits);
# eventTime is in UTC, mostly without a zone as the wide-used client sends
# it, so psql must run with PGTZ=UTC (batch-commit sets TimeZone UTC itself).

# rep(s, c, r): every occurrence of the single character c in s replaced by r
function rep(s, c, r,    parts, k, i, o) {
	k = split(s, parts, c)
	o = parts[1]
	for (i = 2; i <= k; i++)
		o = o r parts[i]
	return o
}

# the body of a JSON string for s (s is plain ASCII or UTF-8 text)
function jesc(s) {
	s = rep(s, "\\", "\\\\")
	s = rep(s, "\"", "\\\"")
	s = rep(s, "\t", "\\t")
	s = rep(s, "\n", "\\n")
	return rep(s, "\r", "\\r")
}

# JSON text as one field of COPY's text format: its backslashes doubled
# (JSON text holds no raw tab, newline or carriage return)
function cesc(s) {
	return rep(s, "\\", "\\\\")
}

function pick(arr, cnt) {
	return arr[int(rand() * cnt) + 1]
}

function addline(s) { ncode++; code_j[ncode] = jesc(s); code_c[ncode] = cesc(code_j[ncode]) }
function adderr(s) { nerr++; err_j[nerr] = jesc(s); err_c[nerr] = cesc(err_j[nerr]) }
function addres(s) { nres++; res_j[nres] = jesc(s); res_c[nres] = cesc(res_j[nres]) }

BEGIN {
	if (n == "" || n + 0 < 0) {
		print "genevents.awk: set -v n=NUMBER" > "/dev/stderr"
		exit 64
	}
	n += 0
	if (mode == "")
		mode = "both"
	if (mode != "both" && mode != "client") {
		print "genevents.awk: mode is both or client" > "/dev/stderr"
		exit 64
	}
	if (mode == "both" && copy == "") {
		print "genevents.awk: set -v copy=FILE for the COPY rows" > "/dev/stderr"
		exit 64
	}
	if (stream == "")
		stream = "labpulse:events"
	if (day == "")
		day = "2026-11-25"
	srand(seed == "" ? 1 : seed + 0)

	# the head of each XADD: command, key, id and field name
	resp_head = sprintf("*5\r\n$4\r\nXADD\r\n$%d\r\n%s\r\n$1\r\n*\r\n$5\r\nevent\r\n", \
	    length(stream), stream)

	split("py4ds-a py4ds-b py4ds-c stats201 ml301", classes, " ")
	split("lab1-basics.ipynb lab2-numpy.ipynb lab3-pandas.ipynb " \
	    "lab4-plots.ipynb project/eda.ipynb hw/hw2.ipynb", notebooks, " ")
	nnb = 6
	split("code code code code code code code markdown", celltypes, " ")

	# lines of cell code: quotes, backslashes, a tab, UTF-8 text
	addline("import pandas as pd")
	addline("import numpy as np")
	addline("import matplotlib.pyplot as plt")
	addline("df = pd.read_csv(\"data/grades.csv\")")
	addline("df.head()")
	addline("df.describe()")
	addline("print(df.groupby('team').score.mean().round(2))")
	addline("for i in range(10):")
	addline("    print(i, i ** 2)")
	addline("x = np.linspace(0, 2 * np.pi, 100)")
	addline("plt.plot(x, np.sin(x)); plt.show()")
	addline("pattern = re.compile(r\"\\d{3}-\\d{4}\")")
	addline("print(\"name\\tscore\")")
	addline("path = \"C:\\\\Users\\\\student\\\\lab3\"")
	addline("s = 'café — naïve résumé'")
	addline("# TODO: fix the merge 🙂")
	addline("assert len(df) > 0, \"empty frame\"")
	addline("def mean(xs):")
	addline("\treturn sum(xs) / len(xs)")
	addline("result = {k: v for k, v in zip(keys, values)}")
	addline("model.fit(X_train, y_train)")
	addline("print(f\"accuracy: {acc:.3f}\")")
	addline("df = df[df[\"score\"] >= 50]")
	addline("with open(\"notes.txt\") as f:")
	addline("    text = f.read()")
	addline("counts = df['grade'].value_counts(normalize=True)")
	addline("y = [v * 2 for v in x if v > 0.5]")
	addline("print(df.shape)")

	adderr("NameError: name 'df' is not defined")
	adderr("KeyError: 'score'")
	adderr("ZeroDivisionError: division by zero")
	adderr("ValueError: could not convert string to float: \"n/a\"")
	adderr("ModuleNotFoundError: No module named 'sklearn'")
	adderr("TypeError: unsupported operand type(s) for +: 'int' and 'str'")
	adderr("SyntaxError: unexpected EOF while parsing")
	adderr("FileNotFoundError: [Errno 2] No such file or directory: 'data\\grades.csv'")

	addres("3.2")
	addres("None")
	addres("   team  score\n0     a   71.5\n1     b   64.0")
	addres("array([0.1, 0.2, 0.3])")
	addres("'ok'")
	addres("<Figure size 640x480 with 1 Axes>")
	addres("(1200, 8)")
	addres("42")

	for (i = 0; i < n; i++) {
		k = int(rand() * 200)			# the student
		cls = classes[int(k / 40) + 1]
		email = sprintf("s%03d@example.edu", k)
		nbi = int(rand() * nnb) + 1
		nb = notebooks[nbi]
		eid = sprintf("%s%08x-%04x-4%03x-%04x-%04x%08x", idprefix, \
		    int(rand() * 4294967296), int(rand() * 65536), \
		    int(rand() * 4096), 32768 + int(rand() * 16384), \
		    int(rand() * 65536), i)

		u = rand()
		if (u < 0.88) et = "cell_executed"
		else if (u < 0.93) et = "notebook_saved"
		else if (u < 0.96) et = "notebook_opened"
		else if (u < 0.98) et = "notebook_closed"
		else if (u < 0.99) et = "help"
		else et = "help_stop"

		# a class day from 09:00 UTC, 50 ms between events, with jitter
		t = (i * 50) % 50400000 + int(rand() * 1000)
		ms = t % 1000; t = int(t / 1000)
		etime = sprintf("%sT%02d:%02d:%02d.%03d", day, 9 + int(t / 3600), \
		    int(t / 60) % 60, t % 60, ms)
		z = rand()
		if (z < 0.10) etime = etime "Z"
		else if (z < 0.15) etime = etime "+00:00"
		# received 15 to 400 ms later
		r = ((9 * 3600 + t) * 1000 + ms + 15 + int(rand() * 385)) * 1000 + \
		    int(rand() * 1000)
		rus = r % 1000000; r = int(r / 1000000)
		rtime = sprintf("%sT%02d:%02d:%02d.%06dZ", day, int(r / 3600), \
		    int(r / 60) % 60, r % 60, rus)
		sess = sprintf("%04x-%d", 16 * k + 7, int(i / 50000))

		head = "{\"eventId\":\"" eid "\",\"eventType\":\"" et \
		    "\",\"eventTime\":\"" etime "\",\"emailAddress\":\"" email \
		    "\",\"userName\":\"Student " k "\",\"teamName\":\"team-" \
		    sprintf("%02d", int(k / 4)) "\",\"sessionId\":\"" sess \
		    "\",\"notebookPath\":\"" nb "\""
		cj = ""; cc = ""
		cell_id = "\\N"; cell_idx = "\\N"; ctype = "\\N"; ecount = "\\N"
		haserr = "\\N"; dur = "\\N"
		if (et == "cell_executed") {
			ci = int(rand() * 30)
			cell_id = sprintf("%08x-%04x", 2654435 * (nbi * 64 + ci) % 4294967296, ci)
			cell_idx = ci
			ctype = celltypes[int(rand() * 8) + 1]
			ecount = ++execs[k]
			# 1 to 4 lines mostly, now and then a long cell
			lines = 1 + int(rand() * rand() * 4)
			if (rand() < 0.02)
				lines = 10 + int(rand() * 21)
			codej = ""; codec = ""
			for (j = 0; j < lines; j++) {
				c = int(rand() * ncode) + 1
				codej = codej (j ? "\\n" : "") code_j[c]
				codec = codec (j ? "\\\\n" : "") code_c[c]
			}
			dur = sprintf("%.1f", 0.5 + rand() * rand() * 1500)
			sub(/\.0$/, "", dur)	# as JSON libraries print it: 807, not 807.0
			if (rand() < 0.07) {
				haserr = "t"
				e = int(rand() * nerr) + 1
				tail_j = ",\"hasError\":true,\"errorMessage\":\"" err_j[e] "\",\"result\":null"
				tail_c = ",\"hasError\":true,\"errorMessage\":\"" err_c[e] "\",\"result\":null"
			} else if (rand() < 0.5) {	# a cell that shows a value
				haserr = "f"
				e = int(rand() * nres) + 1
				tail_j = ",\"hasError\":false,\"result\":\"" res_j[e] "\""
				tail_c = ",\"hasError\":false,\"result\":\"" res_c[e] "\""
			} else {
				haserr = "f"
				tail_j = tail_c = ",\"hasError\":false"
			}
			mid = ",\"cellId\":\"" cell_id "\",\"cellIndex\":" ci \
			    ",\"cellType\":\"" ctype "\",\"code\":\""
			tail2 = ",\"executionCount\":" ecount
			cj = mid codej "\"" tail2 tail_j ",\"executionDurationMs\":" dur
			cc = mid codec "\"" tail2 tail_c ",\"executionDurationMs\":" dur
		}
		meta = rand() < 0.3 ? ",\"metadata\":{\"kernel\":\"python3\"}" : ""
		if (mode == "client") {
			printf "%s%s%s,\"classId\":\"%s\"}\n", head, cj, meta, cls
			continue
		}
		stamps = ",\"classId\":\"" cls "\",\"studentId\":\"" email \
		    "\",\"receivedAt\":\"" rtime "\"}"
		json = head cj meta stamps
		printf "%s$%d\r\n%s\r\n", resp_head, length(json), json
		printf "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s%s%s%s\n", \
		    cls, email, eid, et, etime, rtime, sess, nb, cell_id, \
		    cell_idx, ctype, ecount, haserr, dur, head, cc, meta, stamps > copy
	}
	if (mode == "both")
		close(copy)
	exit 0
}
