// @generated-equivalent of `diesel print-schema` for migrations/ (kept by hand; the migration test checks it).

pub mod sql_types {
    #[derive(diesel::query_builder::QueryId, Clone, diesel::sql_types::SqlType)]
    #[diesel(postgres_type(name = "file_status"))]
    pub struct FileStatus;

    #[derive(diesel::query_builder::QueryId, Clone, diesel::sql_types::SqlType)]
    #[diesel(postgres_type(name = "pin_status"))]
    pub struct PinStatus;

    #[derive(diesel::query_builder::QueryId, Clone, diesel::sql_types::SqlType)]
    #[diesel(postgres_type(name = "pin_lane"))]
    pub struct PinLane;

    #[derive(diesel::query_builder::QueryId, Clone, diesel::sql_types::SqlType)]
    #[diesel(postgres_type(name = "cleanup_status"))]
    pub struct CleanupStatus;
}

diesel::table! {
    use diesel::sql_types::*;

    chain_cursors (name) {
        name -> Text,
        block_number -> Nullable<Int8>,
        block_hash -> Nullable<Text>,
        scan_key -> Nullable<Text>,
        scan_round -> Int8,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use super::sql_types::CleanupStatus;

    cleanups (id) {
        id -> Int8,
        cid -> Text,
        status -> CleanupStatus,
        reason -> Text,
        attempts -> Int4,
        last_error -> Nullable<Text>,
        next_attempt_at -> Timestamptz,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        done_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use super::sql_types::FileStatus;

    file_count_deltas (id) {
        id -> Int8,
        status -> FileStatus,
        reason -> Text,
        scanned -> Bool,
        n -> Int8,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    file_owners (cid, owner) {
        cid -> Text,
        owner -> Text,
        orders -> Int4,
        first_block -> Int8,
        last_block -> Int8,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use super::sql_types::FileStatus;

    files (cid) {
        cid -> Text,
        size_bytes -> Int8,
        tips -> Numeric,
        amount -> Numeric,
        expired_at -> Int8,
        replicas -> Int4,
        seen_by_event -> Bool,
        seen_by_scan -> Bool,
        first_seen_block -> Nullable<Int8>,
        last_order_block -> Nullable<Int8>,
        status -> FileStatus,
        status_reason -> Nullable<Text>,
        attempts -> Int4,
        last_error -> Nullable<Text>,
        next_attempt_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        pursued_since -> Timestamptz,
        space_waits -> Int4,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    kv_state (key) {
        key -> Text,
        value -> Jsonb,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use super::sql_types::PinLane;
    use super::sql_types::PinStatus;

    pins (id) {
        id -> Int8,
        cid -> Text,
        status -> PinStatus,
        lane -> PinLane,
        size_bytes -> Int8,
        attempt -> Int4,
        lease_holder -> Nullable<Text>,
        lease_expires_at -> Nullable<Timestamptz>,
        progress -> Int8,
        sealed_bytes -> Int8,
        seal_checked_at -> Nullable<Timestamptz>,
        seal_stalls -> Int4,
        error -> Nullable<Text>,
        created_at -> Timestamptz,
        started_at -> Nullable<Timestamptz>,
        finished_at -> Nullable<Timestamptz>,
        updated_at -> Timestamptz,
    }
}

diesel::joinable!(cleanups -> files (cid));
diesel::joinable!(file_owners -> files (cid));
diesel::joinable!(pins -> files (cid));

diesel::allow_tables_to_appear_in_same_query!(
    chain_cursors,
    cleanups,
    file_count_deltas,
    file_owners,
    files,
    kv_state,
    pins,
);
