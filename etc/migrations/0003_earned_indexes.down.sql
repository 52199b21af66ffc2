CREATE INDEX CONCURRENTLY IF NOT EXISTS student_progress_class_activity_idx
	ON student_progress (class_id, last_activity DESC);
CREATE INDEX CONCURRENTLY IF NOT EXISTS events_class_errors_idx
	ON events (class_id, event_time DESC) WHERE has_error;
CREATE INDEX CONCURRENTLY IF NOT EXISTS events_class_time_idx
	ON events (class_id, event_time DESC);
CREATE INDEX CONCURRENTLY IF NOT EXISTS events_class_student_time_idx
	ON events (class_id, student_id, event_time DESC);
CREATE INDEX CONCURRENTLY IF NOT EXISTS events_payload_gin_idx
	ON events USING gin (payload jsonb_path_ops);
