-- Optional (migrate-indexes add payload_gin): ad-hoc containment questions
-- on the whole event, such as payload @> '{"cellId": "..."}'. No program of
-- labpulse needs it, and every event written pays for it.
CREATE INDEX CONCURRENTLY IF NOT EXISTS events_payload_gin_idx
	ON events USING gin (payload jsonb_path_ops);
