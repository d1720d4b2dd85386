-- Conversations as the Sales Inbox needs them (R8, R11-R18). Nothing was released on 0001's
-- message tables, so they are replaced rather than migrated: the linker rebuilds them from
-- mail.ingested.v1. The CRM read model of 0001 stays and gains what linking and visibility
-- read.

DROP TABLE thread_links, thread_participants, thread_message_ids, messages, threads;

-- When the linker first heard of a CRM record: R13 links a thread only to items that
-- existed when the thread began (linker clock on both sides).
ALTER TABLE crm_entities ADD COLUMN known_since timestamptz NOT NULL DEFAULT now();

-- Who each deal, lead or project is with; `open` is false for closed or archived items.
CREATE TABLE crm_item_persons (
    company_id  text    NOT NULL,
    person_id   text    NOT NULL,
    kind        text    NOT NULL CHECK (kind IN ('deal', 'lead', 'project')),
    item_id     text    NOT NULL,
    open        boolean NOT NULL,
    PRIMARY KEY (company_id, person_id, kind, item_id)
);
CREATE INDEX crm_item_persons_by_item ON crm_item_persons (company_id, kind, item_id);

-- Team membership as both sides state it: a user's team_ids and a team's member_user_ids.
CREATE TABLE crm_team_members (
    company_id  text NOT NULL,
    team_id     text NOT NULL,
    user_id     text NOT NULL,
    source      text NOT NULL CHECK (source IN ('user', 'team')),
    PRIMARY KEY (company_id, team_id, user_id, source)
);
CREATE INDEX crm_team_members_by_user ON crm_team_members (company_id, user_id);

-- Mailbox accounts as the linker knows them: from mail.accounts.v1 and from the stamps ingest
-- puts on every message (type, members, default visibility at the time).
CREATE TABLE accounts (
    account_id          text    PRIMARY KEY,
    company_id          text    NOT NULL,
    owner_user_id       text    NOT NULL,
    email               text    NOT NULL,
    account_type        text    NOT NULL CHECK (account_type IN ('personal', 'team')),
    connected           boolean NOT NULL DEFAULT true
);
CREATE INDEX accounts_by_owner ON accounts (company_id, owner_user_id);

CREATE TABLE account_members (
    account_id  text NOT NULL REFERENCES accounts (account_id) ON DELETE CASCADE,
    user_id     text NOT NULL,
    PRIMARY KEY (account_id, user_id)
);
CREATE INDEX account_members_by_user ON account_members (user_id);

-- One conversation in one account's mailbox. The same conversation synced by two users is
-- two threads (each with its owner and visibility) over shared messages. The tables keyed by
-- thread_id below carry no foreign key to it: the per-row checks cost more than the rest of
-- filing a poll, and every thread is created and deleted with its rows by repository.py.
CREATE TABLE threads (
    thread_id         uuid        PRIMARY KEY,
    company_id        text        NOT NULL,
    account_id        text        NOT NULL,
    owner_user_id     text        NOT NULL,
    account_type      text        NOT NULL CHECK (account_type IN ('personal', 'team')),
    subject           text        NOT NULL,
    subject_key       text        NOT NULL,
    visibility        text        NOT NULL CHECK (visibility IN ('shared', 'private', 'team')),
    archived          boolean     NOT NULL DEFAULT false,
    unread            boolean     NOT NULL DEFAULT false,
    message_count     integer     NOT NULL DEFAULT 0,
    first_message_at  timestamptz,
    last_message_at   timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX threads_inbox ON threads
    (company_id, account_id, archived, last_message_at DESC NULLS LAST, thread_id DESC);
CREATE INDEX threads_by_subject ON threads (account_id, subject_key) WHERE subject_key <> '';

-- A message once per company, whichever mailboxes hold it: keyed by its Message-ID (or the
-- raw content's sha256 when it has none).
CREATE TABLE messages (
    company_id    text        NOT NULL,
    message_key   text        NOT NULL,
    message_id    text,
    subject       text        NOT NULL,
    sent_at       timestamptz,
    sender        jsonb,
    recipients    jsonb       NOT NULL,
    snippet       text        NOT NULL,
    has_html      boolean     NOT NULL DEFAULT false,
    attachments   jsonb       NOT NULL DEFAULT '[]',
    raw_sha256    text        NOT NULL,
    size          bigint,
    parse_error   text,
    too_large     boolean     NOT NULL DEFAULT false,
    PRIMARY KEY (company_id, message_key)
);

-- A message's membership in one account's thread. `message_uid` is the id the read API and
-- thread commands use for it.
CREATE TABLE thread_messages (
    account_id    text        NOT NULL,
    message_key   text        NOT NULL,
    message_uid   uuid        NOT NULL UNIQUE,
    thread_id     uuid        NOT NULL,
    company_id    text        NOT NULL,
    sent_at       timestamptz,
    outgoing      boolean     NOT NULL,
    unread        boolean     NOT NULL,
    PRIMARY KEY (account_id, message_key)
);
CREATE INDEX thread_messages_by_thread ON thread_messages (thread_id, sent_at);

-- Where an account's copy of a message sits in its mailbox (for R8 expunges and R19 mirroring).
CREATE TABLE message_locations (
    account_id    text    NOT NULL,
    folder        text    NOT NULL,
    uidvalidity   bigint  NOT NULL,
    uid           bigint  NOT NULL,
    message_key   text    NOT NULL,
    folder_role   text    NOT NULL,
    PRIMARY KEY (account_id, folder, uidvalidity, uid)
);
CREATE INDEX message_locations_by_message ON message_locations (account_id, message_key);

-- R18: a message deleted in the CRM never comes back, whatever ingest publishes again.
CREATE TABLE deleted_messages (
    account_id   text        NOT NULL,
    message_key  text        NOT NULL,
    deleted_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, message_key)
);

-- Every Message-ID (and provider thread id, prefixed "thread:") a thread knows, per account,
-- so a reply finds its conversation whichever arrives first (R11).
CREATE TABLE thread_message_ids (
    account_id  text NOT NULL,
    message_id  text NOT NULL,
    thread_id   uuid NOT NULL,
    PRIMARY KEY (account_id, message_id)
);
CREATE INDEX thread_message_ids_by_thread ON thread_message_ids (thread_id);

-- Everyone on the conversation; `external` ones (not the account's, not a colleague's) are
-- the customers matched to CRM persons (R12). Users' own addresses make R16's participants.
CREATE TABLE thread_participants (
    thread_id   uuid    NOT NULL,
    company_id  text    NOT NULL,
    email       text    NOT NULL,
    name        text,
    external    boolean NOT NULL,
    PRIMARY KEY (thread_id, email)
);
CREATE INDEX thread_participants_by_email ON thread_participants (company_id, email);

CREATE TABLE thread_links (
    thread_id   uuid        NOT NULL,
    company_id  text        NOT NULL,
    kind        text        NOT NULL,
    entity_id   text        NOT NULL,
    origin      text        NOT NULL CHECK (origin IN ('auto', 'manual')),
    linked_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (thread_id, kind, entity_id)
);
CREATE INDEX thread_links_by_item ON thread_links (company_id, kind, entity_id);

-- R13: what a user unlinked stays unlinked; a kind a user linked or unlinked by hand is
-- theirs, and automation leaves that kind of the thread alone from then on.
CREATE TABLE thread_manual_kinds (
    thread_id  uuid NOT NULL,
    kind       text NOT NULL,
    PRIMARY KEY (thread_id, kind)
);
CREATE TABLE thread_unlinks (
    thread_id  uuid NOT NULL,
    kind       text NOT NULL,
    entity_id  text NOT NULL,
    PRIMARY KEY (thread_id, kind, entity_id)
);

-- The candidates a thread last asked its owner to choose between (R13), so a later message
-- with the same candidates does not ask again.
CREATE TABLE thread_link_choices (
    thread_id   uuid   NOT NULL,
    kind        text   NOT NULL,
    candidates  text[] NOT NULL,
    PRIMARY KEY (thread_id, kind)
);
