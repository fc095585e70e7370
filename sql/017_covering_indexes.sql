-- The rollups' range scans read only the index (measured on 10M events,
-- bench/queries.py): a tenant's 30 days are ~45k sessions and ~160k session
-- pages scattered among every tenant's rows, and fetching them from the heap
-- was most of the time of the sessions, overview and pages questions.
-- Autovacuum keeps the visibility map set for all but the newest rows.
DROP INDEX session_rollup_start;
CREATE INDEX session_rollup_start ON session_rollup (company_id, started_at)
    INCLUDE (ended_at, is_bot, actor, page_views, engaged);
DROP INDEX session_page_rollup_start;
CREATE INDEX session_page_rollup_start ON session_page_rollup (company_id, started_at)
    INCLUDE (is_bot, page, actor, views, timed_views, seconds_on_page, clicks, max_scroll, exits);
