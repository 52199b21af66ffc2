-- Optional (migrate-indexes add class_timeline): an instructor's report of
-- a class's latest events, WHERE class_id = $1 ORDER BY event_time DESC.
CREATE INDEX CONCURRENTLY IF NOT EXISTS events_class_time_idx
	ON events (class_id, event_time DESC);
