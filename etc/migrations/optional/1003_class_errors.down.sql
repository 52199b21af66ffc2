DROP INDEX CONCURRENTLY IF EXISTS events_class_errors_idx;
