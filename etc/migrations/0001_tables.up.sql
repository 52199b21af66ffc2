-- The tables of labpulse: every event once, per-student progress kept in the
-- same transaction, what PostgreSQL refused, and who may watch which class.

CREATE TABLE events (
	id			bigserial PRIMARY KEY,
	class_id		text NOT NULL,
	student_id		text NOT NULL,
	event_id		text NOT NULL,
	event_type		text NOT NULL,
	event_time		timestamptz NOT NULL,
	received_at		timestamptz NOT NULL,
	session_id		text,
	notebook_path		text,
	cell_id			text,
	cell_index		integer,
	cell_type		text,
	execution_count		integer,
	has_error		boolean,
	execution_duration_ms	double precision,
	payload			jsonb NOT NULL,
	committed_at		timestamptz NOT NULL DEFAULT now(),
	-- the idempotency key: two students' clients may both send test-event-1
	CONSTRAINT events_student_event_key UNIQUE (student_id, event_id)
);

CREATE TABLE student_progress (
	class_id		text NOT NULL,
	student_id		text NOT NULL,
	notebook_path		text NOT NULL DEFAULT '',
	events			bigint NOT NULL DEFAULT 0,
	executions		bigint NOT NULL DEFAULT 0,
	errors			bigint NOT NULL DEFAULT 0,
	first_activity		timestamptz NOT NULL,
	last_activity		timestamptz NOT NULL,
	last_event_type		text NOT NULL,
	PRIMARY KEY (class_id, student_id, notebook_path)
);

CREATE TABLE dead_events (
	id			bigserial PRIMARY KEY,
	stream_id		text,
	consumer		text,
	reason			text NOT NULL,
	sqlstate		text,
	raw			bytea NOT NULL,
	raw_sha256		bytea GENERATED ALWAYS AS (sha256(raw)) STORED,
	failed_at		timestamptz NOT NULL DEFAULT now(),
	-- an entry set aside twice (its batch retried after an unsure COMMIT)
	-- is kept once; distinct entries are all kept, whatever their bytes
	CONSTRAINT dead_events_entry_key UNIQUE (stream_id, raw_sha256)
);

CREATE TABLE instructors (
	id			bigserial PRIMARY KEY,
	name			text NOT NULL,
	email			text UNIQUE,
	-- tokens are stored only as hashes (hex SHA-256 of the token)
	token_hash		text NOT NULL UNIQUE,
	created_at		timestamptz NOT NULL DEFAULT now(),
	disabled_at		timestamptz
);

CREATE TABLE instructor_classes (
	instructor_id		bigint NOT NULL REFERENCES instructors (id) ON DELETE CASCADE,
	class_id		text NOT NULL,
	PRIMARY KEY (instructor_id, class_id)
);
