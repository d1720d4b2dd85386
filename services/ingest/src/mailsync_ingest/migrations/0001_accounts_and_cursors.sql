CREATE TABLE accounts (
    account_id      text PRIMARY KEY,
    company_id      text        NOT NULL,
    user_id         text        NOT NULL,
    email           text        NOT NULL,
    provider        text,
    account_type    text        NOT NULL CHECK (account_type IN ('personal', 'team')),
    member_user_ids text[]      NOT NULL DEFAULT '{}',
    imap_host       text        NOT NULL,
    imap_port       integer     NOT NULL,
    imap_security   text        NOT NULL CHECK (imap_security IN ('tls', 'starttls', 'plain')),
    username        text        NOT NULL,
    sealed_password bytea       NOT NULL,
    state           text        NOT NULL DEFAULT 'active'
                    CHECK (state IN ('active', 'reauth_required', 'disconnected')),
    is_default      boolean     NOT NULL DEFAULT false,
    connected_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX accounts_by_user ON accounts (company_id, user_id);

-- Where the sync of one folder stands (RFC 3501 UIDVALIDITY/UIDNEXT, RFC 7162 MODSEQ).
CREATE TABLE folder_cursors (
    account_id      text    NOT NULL REFERENCES accounts (account_id) ON DELETE CASCADE,
    folder          text    NOT NULL,
    uidvalidity     bigint  NOT NULL,
    last_seen_uid   bigint  NOT NULL DEFAULT 0,
    highestmodseq   bigint,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, folder)
);

-- One row per message seen in a folder: the natural key makes re-fetching harmless.
CREATE TABLE ingested_messages (
    account_id      text    NOT NULL REFERENCES accounts (account_id) ON DELETE CASCADE,
    folder          text    NOT NULL,
    uidvalidity     bigint  NOT NULL,
    uid             bigint  NOT NULL,
    message_id      text,
    raw_sha256      text    NOT NULL,
    ingested_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, folder, uidvalidity, uid)
);
