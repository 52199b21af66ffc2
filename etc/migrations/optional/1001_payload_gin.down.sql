DROP INDEX CONCURRENTLY IF EXISTS events_payload_gin_idx;
