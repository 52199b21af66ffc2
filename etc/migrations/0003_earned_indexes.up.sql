-- Every index earns its write cost (labpulse(7), INDEXES): those no query of
-- labpulse needs go, CONCURRENTLY, so that a live database keeps taking
-- events meanwhile; IF EXISTS makes a rerun after a failure safe.
--   events_class_student_time_idx: a student's timeline is served by
--     events_student_event_key, which leads with student_id;
--   student_progress_class_activity_idx: notify's snapshot of a class is
--     served by student_progress_pkey, which leads with class_id; without
--     it, updating last_activity no longer rules out HOT updates;
--   events_payload_gin_idx, events_class_time_idx, events_class_errors_idx:
--     ad-hoc questions only: optional migrations now (migrate-indexes add).
DROP INDEX CONCURRENTLY IF EXISTS events_payload_gin_idx;
DROP INDEX CONCURRENTLY IF EXISTS events_class_student_time_idx;
DROP INDEX CONCURRENTLY IF EXISTS events_class_time_idx;
DROP INDEX CONCURRENTLY IF EXISTS events_class_errors_idx;
DROP INDEX CONCURRENTLY IF EXISTS student_progress_class_activity_idx;
