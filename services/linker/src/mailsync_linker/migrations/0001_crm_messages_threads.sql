-- The CRM as the linker knows it, built from crm.entities.v1. `version_time` is the event
-- time of the last applied change, so a late, older event never overwrites a newer one.
CREATE TABLE crm_entities (
    company_id    text        NOT NULL,
    kind          text        NOT NULL,
    entity_id     text        NOT NULL,
    attributes    jsonb       NOT NULL,
    deleted       boolean     NOT NULL DEFAULT false,
    version_time  timestamptz NOT NULL,
    PRIMARY KEY (company_id, kind, entity_id)
);

-- Addresses of persons (to link) and of users (to exclude as colleagues, R12), normalized.
CREATE TABLE crm_addresses (
    company_id    text NOT NULL,
    email         text NOT NULL,
    kind          text NOT NULL CHECK (kind IN ('person', 'user')),
    entity_id     text NOT NULL,
    PRIMARY KEY (company_id, email, kind, entity_id)
);
CREATE INDEX crm_addresses_by_entity ON crm_addresses (company_id, kind, entity_id);

CREATE TABLE threads (
    thread_id          uuid        PRIMARY KEY,
    company_id         text        NOT NULL,
    account_id         text        NOT NULL,
    owner_user_id      text        NOT NULL,
    subject            text        NOT NULL,
    visibility         text        NOT NULL CHECK (visibility IN ('shared', 'private', 'team')),
    archived           boolean     NOT NULL DEFAULT false,
    last_message_at    timestamptz,
    created_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX threads_by_account ON threads (account_id, last_message_at DESC);

-- A message once per account, whatever folders it sits in: the natural key is its
-- Message-ID, or the raw content's sha256 when it has none.
CREATE TABLE messages (
    account_id     text        NOT NULL,
    message_key    text        NOT NULL,
    thread_id      uuid        NOT NULL REFERENCES threads (thread_id) ON DELETE CASCADE,
    message_id     text,
    subject        text        NOT NULL,
    sent_at        timestamptz,
    sender         jsonb,
    recipients     jsonb       NOT NULL,
    snippet        text        NOT NULL,
    raw_sha256     text        NOT NULL,
    parse_error    text,
    PRIMARY KEY (account_id, message_key)
);
CREATE INDEX messages_by_thread ON messages (thread_id);

-- Every Message-ID a thread knows (its own and the ones its messages reference), per
-- account, so a reply finds its conversation by References/In-Reply-To (R11).
CREATE TABLE thread_message_ids (
    account_id  text NOT NULL,
    message_id  text NOT NULL,
    thread_id   uuid NOT NULL REFERENCES threads (thread_id) ON DELETE CASCADE,
    PRIMARY KEY (account_id, message_id)
);

CREATE TABLE thread_participants (
    thread_id  uuid NOT NULL REFERENCES threads (thread_id) ON DELETE CASCADE,
    email      text NOT NULL,
    name       text,
    PRIMARY KEY (thread_id, email)
);

CREATE TABLE thread_links (
    thread_id  uuid NOT NULL REFERENCES threads (thread_id) ON DELETE CASCADE,
    kind       text NOT NULL,
    entity_id  text NOT NULL,
    origin     text NOT NULL CHECK (origin IN ('auto', 'manual')),
    PRIMARY KEY (thread_id, kind, entity_id)
);
