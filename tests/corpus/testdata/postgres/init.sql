-- Run once by the entrypoint against the socket-only server.
CREATE TABLE corpus_init (note text);
INSERT INTO corpus_init VALUES ('made by /docker-entrypoint-initdb.d/init.sql');
