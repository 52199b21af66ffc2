-- The indexes the dashboards and reports need, built CONCURRENTLY so that a
-- live database keeps taking events meanwhile. This migration therefore runs
-- outside a transaction, one statement at a time; IF NOT EXISTS makes a rerun
-- after a failure safe.

-- a class's timeline and a student's timeline within a class
CREATE INDEX CONCURRENTLY IF NOT EXISTS events_class_student_time_idx
	ON events (class_id, student_id, event_time DESC);
CREATE INDEX CONCURRENTLY IF NOT EXISTS events_class_time_idx
	ON events (class_id, event_time DESC);
-- who is stuck: failing cells of a class, a small partial index
CREATE INDEX CONCURRENTLY IF NOT EXISTS events_class_errors_idx
	ON events (class_id, event_time DESC) WHERE has_error;
-- ad-hoc questions on the whole event
CREATE INDEX CONCURRENTLY IF NOT EXISTS events_payload_gin_idx
	ON events USING gin (payload jsonb_path_ops);
-- the dashboard's snapshot of a class, most recent first
CREATE INDEX CONCURRENTLY IF NOT EXISTS student_progress_class_activity_idx
	ON student_progress (class_id, last_activity DESC);
-- the foreign key's other side: who watches this class
CREATE INDEX CONCURRENTLY IF NOT EXISTS instructor_classes_class_idx
	ON instructor_classes (class_id);
CREATE INDEX CONCURRENTLY IF NOT EXISTS dead_events_failed_at_idx
	ON dead_events (failed_at);
