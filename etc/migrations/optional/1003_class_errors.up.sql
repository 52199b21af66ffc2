-- Optional (migrate-indexes add class_errors): an instructor's report of
-- who is stuck, the failing cells of a class lately, WHERE class_id = $1
-- AND has_error AND event_time > ...; a small partial index.
CREATE INDEX CONCURRENTLY IF NOT EXISTS events_class_errors_idx
	ON events (class_id, event_time DESC) WHERE has_error;
