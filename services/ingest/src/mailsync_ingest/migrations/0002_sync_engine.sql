-- The complete sync engine (issue 3): account settings and leases, backfill cursors,
-- message identities for move/UIDVALIDITY detection.

-- `settings` is the account's AccountSettings (mailsync_contracts) as JSON: sync scope,
-- history window, blocklist, default visibility, mirroring switches.
-- `max_message_bytes` is the provider's per-message limit (R4); larger messages are recorded
-- from their header only.
-- `lease_owner`/`lease_until`: which ingest replica syncs this account, until when (scale-out).
ALTER TABLE accounts
    ADD COLUMN settings          jsonb       NOT NULL DEFAULT '{}',
    ADD COLUMN max_message_bytes bigint,
    ADD COLUMN initial_sync_done boolean     NOT NULL DEFAULT false,
    ADD COLUMN lease_owner       text,
    ADD COLUMN lease_until       timestamptz;
CREATE INDEX accounts_claimable ON accounts (lease_until) WHERE state = 'active';

-- Initial sync runs newest first, downwards from the UIDNEXT seen at the start:
-- `last_seen_uid` is the top (new mail above it is incremental), `backfill_floor` the lowest
-- UID already done (NULL: backfill not started, 1: done).
ALTER TABLE folder_cursors
    ADD COLUMN backfill_floor bigint,
    ADD COLUMN backfill_total integer NOT NULL DEFAULT 0,
    ADD COLUMN backfill_done  integer NOT NULL DEFAULT 0;

-- `size` (RFC822.SIZE) with `message_id` is a message's identity across folders and
-- UIDVALIDITY epochs (the content hash when there is no Message-ID); `gone_at` marks a row
-- whose UID left its folder; `expunged` that the message was then found nowhere else and
-- `mail.message.expunged` was published; `outcome` says what was published when it arrived:
-- ingested, screened, or nothing because the same message was already known (a copy, a move,
-- a UIDVALIDITY resync). A known copy's body is never fetched, so it has no hash.
ALTER TABLE ingested_messages
    ALTER COLUMN raw_sha256 DROP NOT NULL,
    ADD COLUMN size     bigint,
    ADD COLUMN gone_at  timestamptz,
    ADD COLUMN expunged boolean NOT NULL DEFAULT false,
    ADD COLUMN outcome  text    NOT NULL DEFAULT 'ingested'
        CHECK (outcome IN ('ingested', 'screened', 'known'));
CREATE INDEX ingested_by_identity ON ingested_messages (account_id, message_id, size)
    WHERE message_id IS NOT NULL;
CREATE INDEX ingested_by_content ON ingested_messages (account_id, raw_sha256)
    WHERE raw_sha256 IS NOT NULL;
