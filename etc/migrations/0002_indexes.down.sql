DROP INDEX CONCURRENTLY IF EXISTS dead_events_failed_at_idx;
DROP INDEX CONCURRENTLY IF EXISTS instructor_classes_class_idx;
DROP INDEX CONCURRENTLY IF EXISTS student_progress_class_activity_idx;
DROP INDEX CONCURRENTLY IF EXISTS events_payload_gin_idx;
DROP INDEX CONCURRENTLY IF EXISTS events_class_errors_idx;
DROP INDEX CONCURRENTLY IF EXISTS events_class_time_idx;
DROP INDEX CONCURRENTLY IF EXISTS events_class_student_time_idx;
