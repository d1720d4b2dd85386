-- Indexes of the read API (queries.py), each for a statement EXPLAIN showed scanning the
-- whole table without it, on a company of 1M threads.

-- The inbox's first branch (R2: threads the viewer owns), read a page at a time in the
-- inbox's order; without it Postgres scans every thread of every company.
CREATE INDEX threads_by_owner ON threads
    (company_id, owner_user_id, archived, last_message_at DESC NULLS LAST, thread_id DESC);

-- The inbox's R16 branch for viewers with many participations: the company's shared
-- threads newest first, each asked whether the viewer is on it; the owner is in the index
-- so the viewer's own threads are skipped without visiting the table.
CREATE INDEX threads_shared ON threads
    (company_id, archived, last_message_at DESC NULLS LAST, thread_id DESC)
    INCLUDE (owner_user_id) WHERE visibility = 'shared';

-- Unread counts per account: only the unread inbox threads, counted from the index alone.
CREATE INDEX threads_unread ON threads (company_id, account_id)
    INCLUDE (owner_user_id, account_type) WHERE unread AND NOT archived;
