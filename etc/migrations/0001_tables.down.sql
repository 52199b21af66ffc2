DROP TABLE instructor_classes;
DROP TABLE instructors;
DROP TABLE dead_events;
DROP TABLE student_progress;
DROP TABLE events;
