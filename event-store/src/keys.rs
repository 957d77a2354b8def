//! Crypto-shredding: what a user typed (a task's title, description and
//! tags) is stored and published sealed with a data key of that user's, and
//! erasing the user deletes the key. Envelope encryption: each data key is
//! kept in `user_keys` wrapped by the master key (`TASKLEDGER_MASTER_KEY`),
//! which never reaches the database. ChaCha20-Poly1305 from `ring` seals both
//! layers. See docs/adr/0014.
//!
//! A sealed event's fields hold, instead of the personal ones,
//! `"sealed": {"by": user, "key": key id, "fields": [names], "box": base64}`;
//! the box is bound to the task it belongs to (the AEAD's associated data),
//! so it cannot be moved to another task. Opening a box whose key is gone
//! gives each field its erased value: an empty title, no description, no
//! tags. Events written before sealing began read as they are.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, OnceLock};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hashlink::LruCache;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use serde_json::{json, Map, Value};
use sqlx::PgPool;

/// The fields of an event a user typed (a task's title, description and
/// tags, a list's name), at the top level and inside a completion's
/// `next_occurrence`.
pub const PERSONAL_FIELDS: [&str; 4] = ["title", "description", "tags", "name"];
const NESTED: &str = "next_occurrence";
/// The key under which an event's fields keep their sealed box.
pub const SEALED: &str = "sealed";
const KEY_LEN: usize = 32;
/// Data keys a process keeps unwrapped for writing.
const CACHED_KEYS: usize = 10_000;

/// Why sealing or opening could not go on.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("the master key is not set up in this process")]
    NoMasterKey,
    #[error("the master key must be 32 bytes in standard base64")]
    BadMasterKey,
    #[error("this process already serves another master key")]
    OtherMasterKey,
    #[error("a data key does not unwrap with the master key {0:?}")]
    Unwrap(String),
    #[error("the system's random source failed")]
    Random,
    #[error("the data key of {0:?} was deleted while it was being made")]
    Vanished(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// The key that wraps every data key.
pub struct MasterKey {
    /// Names the key in `user_keys.master_key_id`, for rotation.
    id: String,
    key: LessSafeKey,
}

impl MasterKey {
    /// 32 bytes in standard base64, as `TASKLEDGER_MASTER_KEY` holds them.
    pub fn from_base64(text: &str) -> Result<Self, KeyError> {
        let bytes = BASE64
            .decode(text.trim())
            .map_err(|_| KeyError::BadMasterKey)?;
        Self::from_bytes(&bytes)
    }

    /// The key of local mode only: written here, so it protects nothing.
    pub fn local_development() -> Self {
        Self::from_bytes(b"taskledger local development key").expect("32 bytes")
    }

    fn from_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
        let key = UnboundKey::new(&CHACHA20_POLY1305, bytes).map_err(|_| KeyError::BadMasterKey)?;
        // The id says which master key wrapped a data key without saying
        // anything of the key: the first bytes of a seal of nothing.
        let probe = LessSafeKey::new(key);
        let mut tag = Vec::new();
        probe
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key([0; NONCE_LEN]),
                Aad::from(b"taskledger master key id"),
                &mut tag,
            )
            .map_err(|_| KeyError::BadMasterKey)?;
        let id = tag[..6].iter().map(|b| format!("{b:02x}")).collect();
        Ok(Self { id, key: probe })
    }

    pub fn id(&self) -> &str {
        &self.id
    }
}

static MASTER: OnceLock<MasterKey> = OnceLock::new();

/// Sets the process's master key, once, as a role starts. A second call
/// with another key is refused: one process serves one deployment.
pub fn install_master_key(key: MasterKey) -> Result<(), KeyError> {
    let id = key.id.clone();
    if MASTER.get_or_init(|| key).id == id {
        Ok(())
    } else {
        Err(KeyError::OtherMasterKey)
    }
}

fn master() -> Result<&'static MasterKey, KeyError> {
    MASTER.get().ok_or(KeyError::NoMasterKey)
}

/// One user's data key, unwrapped.
pub struct DataKey {
    pub user_id: String,
    pub key_id: String,
    key: LessSafeKey,
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataKey")
            .field("user_id", &self.user_id)
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

fn random<const N: usize>() -> Result<[u8; N], KeyError> {
    let mut bytes = [0; N];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| KeyError::Random)?;
    Ok(bytes)
}

/// `nonce || ciphertext || tag` of `plain` under `key`, bound to `aad`.
fn seal_bytes(key: &LessSafeKey, aad: &[u8], plain: &[u8]) -> Result<Vec<u8>, KeyError> {
    let nonce = random::<NONCE_LEN>()?;
    let mut sealed = plain.to_vec();
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(aad),
        &mut sealed,
    )
    .map_err(|_| KeyError::Random)?;
    let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    Ok(out)
}

/// The plain bytes of `sealed`, or `None` if it was not sealed by `key`
/// for `aad` (or was altered).
fn open_bytes(key: &LessSafeKey, aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
    if sealed.len() < NONCE_LEN {
        return None;
    }
    let (nonce, body) = sealed.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
    let mut body = body.to_vec();
    let plain = key.open_in_place(nonce, Aad::from(aad), &mut body).ok()?;
    Some(plain.to_vec())
}

fn wrapping_aad(user_id: &str, key_id: &str) -> Vec<u8> {
    format!("taskledger data key\0{user_id}\0{key_id}").into_bytes()
}

impl DataKey {
    /// A new random key for `user_id`, and its bytes wrapped by the master
    /// key, as `user_keys` keeps them.
    pub fn generate(user_id: &str) -> Result<(Self, Vec<u8>), KeyError> {
        let bytes = random::<KEY_LEN>()?;
        let key_id: String = random::<6>()?.iter().map(|b| format!("{b:02x}")).collect();
        let wrapped = seal_bytes(&master()?.key, &wrapping_aad(user_id, &key_id), &bytes)?;
        let key = Self::from_bytes(user_id, &key_id, &bytes)?;
        Ok((key, wrapped))
    }

    fn from_bytes(user_id: &str, key_id: &str, bytes: &[u8]) -> Result<Self, KeyError> {
        let key = UnboundKey::new(&CHACHA20_POLY1305, bytes)
            .map_err(|_| KeyError::Unwrap(user_id.to_owned()))?;
        Ok(Self {
            user_id: user_id.to_owned(),
            key_id: key_id.to_owned(),
            key: LessSafeKey::new(key),
        })
    }

    /// A data key as `user_keys` keeps it, unwrapped by the master key.
    pub fn unwrap(user_id: &str, key_id: &str, wrapped: &[u8]) -> Result<Self, KeyError> {
        let bytes = open_bytes(&master()?.key, &wrapping_aad(user_id, key_id), wrapped)
            .ok_or_else(|| KeyError::Unwrap(master().map(|m| m.id.clone()).unwrap_or_default()))?;
        Self::from_bytes(user_id, key_id, &bytes)
    }
}

/// What opening an event's fields found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opened {
    /// Nothing was sealed (an event without personal fields, or written
    /// before sealing began).
    Plain,
    /// The box was opened: the fields are back.
    Opened,
    /// The key is gone: the fields read as erased.
    Erased,
}

/// Whose key sealed `fields` (an event's own fields) and which key, if sealed.
pub fn sealed_by(fields: &Value) -> Option<(&str, &str)> {
    let sealed = fields.get(SEALED)?;
    Some((sealed.get("by")?.as_str()?, sealed.get("key")?.as_str()?))
}

/// Whether `fields` (an event's own) hold anything a user typed.
pub fn has_personal(fields: &Value) -> bool {
    let has = |object: &Value| {
        PERSONAL_FIELDS
            .iter()
            .any(|name| object.get(name).is_some())
    };
    has(fields)
        || fields
            .get(NESTED)
            .is_some_and(|nested| nested.is_object() && has(nested))
}

/// Moves the personal fields of `fields` into a box sealed with `key` and
/// bound to `aad` (the task id). Fields without personal ones stay as they are.
pub fn seal(fields: &mut Value, key: &DataKey, aad: &str) -> Result<(), KeyError> {
    let Value::Object(object) = fields else {
        return Ok(());
    };
    let mut plain = Map::new();
    let mut names = Vec::new();
    for name in PERSONAL_FIELDS {
        if let Some(value) = object.remove(name) {
            names.push(name.to_owned());
            plain.insert(name.to_owned(), value);
        }
    }
    if let Some(Value::Object(nested)) = object.get_mut(NESTED) {
        let mut inner = Map::new();
        for name in PERSONAL_FIELDS {
            if let Some(value) = nested.remove(name) {
                names.push(format!("{NESTED}.{name}"));
                inner.insert(name.to_owned(), value);
            }
        }
        if !inner.is_empty() {
            plain.insert(NESTED.to_owned(), Value::Object(inner));
        }
    }
    if names.is_empty() {
        return Ok(());
    }
    let bytes = serde_json::to_vec(&plain).expect("JSON values serialize");
    let sealed = seal_bytes(&key.key, aad.as_bytes(), &bytes)?;
    object.insert(
        SEALED.to_owned(),
        json!({
            "by": key.user_id,
            "key": key.key_id,
            "fields": names,
            "box": BASE64.encode(sealed),
        }),
    );
    Ok(())
}

/// Puts the personal fields of `fields` back from its box with `key`, or,
/// when the key is gone (`None`, another key, or a box that does not open),
/// gives each its erased value.
pub fn open(fields: &mut Value, key: Option<&DataKey>, aad: &str) -> Opened {
    let Value::Object(object) = fields else {
        return Opened::Plain;
    };
    let Some(sealed) = object.remove(SEALED) else {
        return Opened::Plain;
    };
    let plain = key
        .filter(|key| sealed.get("key").and_then(Value::as_str) == Some(key.key_id.as_str()))
        .and_then(|key| {
            let bytes = BASE64.decode(sealed.get("box")?.as_str()?).ok()?;
            let plain = open_bytes(&key.key, aad.as_bytes(), &bytes)?;
            serde_json::from_slice::<Map<String, Value>>(&plain).ok()
        });
    match plain {
        Some(mut plain) => {
            if let Some(Value::Object(inner)) = plain.remove(NESTED) {
                if let Some(Value::Object(nested)) = object.get_mut(NESTED) {
                    nested.extend(inner);
                }
            }
            object.extend(plain);
            Opened::Opened
        }
        None => {
            let names = sealed.get("fields").and_then(Value::as_array);
            for name in names.into_iter().flatten().filter_map(Value::as_str) {
                let (target, field) = match name.split_once('.') {
                    Some((NESTED, field)) => match object.get_mut(NESTED) {
                        Some(Value::Object(nested)) => (nested, field),
                        _ => continue,
                    },
                    Some(_) => continue,
                    None => (&mut *object, name),
                };
                if let Some(erased) = erased_value(field) {
                    target.insert(field.to_owned(), erased);
                }
            }
            Opened::Erased
        }
    }
}

/// Seals `fields` with `key`, or, without one (its owner was erased), gives
/// each personal field its erased value.
pub fn seal_or_blank(fields: &mut Value, key: Option<&DataKey>, aad: &str) -> Result<(), KeyError> {
    match key {
        Some(key) => seal(fields, key, aad),
        None => {
            if let Value::Object(object) = fields {
                for name in PERSONAL_FIELDS {
                    if let Some(value) = object.get_mut(name) {
                        *value = erased_value(name).unwrap_or(Value::Null);
                    }
                }
            }
            Ok(())
        }
    }
}

/// What an erased personal field reads as.
fn erased_value(field: &str) -> Option<Value> {
    match field {
        "title" | "name" => Some(Value::String(String::new())),
        "description" => Some(Value::Null),
        "tags" => Some(Value::Array(Vec::new())),
        _ => None,
    }
}

/// Data keys unwrapped while reading one set of rows: a task's events, or a
/// user's tasks, share one.
#[derive(Default)]
pub struct KeyCache(HashMap<(String, String), Arc<DataKey>>);

impl KeyCache {
    /// Opens the fields of a stored event (`payload` as stored:
    /// `{"<event type>": {fields}}`) with `key`, the `(key id, wrapped key)`
    /// read with it; answers whether they read as erased.
    pub fn open_event(
        &mut self,
        payload: &mut Value,
        event_type: &str,
        aggregate_id: &str,
        key: Option<(&str, &[u8])>,
    ) -> Result<bool, KeyError> {
        match payload.get_mut(event_type) {
            Some(fields) => self.open_fields(fields, aggregate_id, key),
            None => Ok(false),
        }
    }

    /// Opens `fields` (an event's own, or a task's snapshot) with `key`, the
    /// `(key id, wrapped key)` read with them; answers whether they read as
    /// erased.
    pub fn open_fields(
        &mut self,
        fields: &mut Value,
        aggregate_id: &str,
        key: Option<(&str, &[u8])>,
    ) -> Result<bool, KeyError> {
        let Some((user, _)) = sealed_by(fields) else {
            return Ok(false);
        };
        let key = match key {
            Some((key_id, wrapped)) => {
                let id = (user.to_owned(), key_id.to_owned());
                match self.0.get(&id) {
                    Some(key) => Some(key.clone()),
                    None => {
                        let key = Arc::new(DataKey::unwrap(&id.0, key_id, wrapped)?);
                        if self.0.len() >= 1_000 {
                            self.0.clear();
                        }
                        self.0.insert(id, key.clone());
                        Some(key)
                    }
                }
            }
            None => None,
        };
        Ok(open(fields, key.as_deref(), aggregate_id) == Opened::Erased)
    }
}

/// The channel an erasure notifies, with the user id, as it commits: every
/// API process closes that user's WebSockets, and every process that runs
/// commands (the API, the recurrence processor) forgets the tasks it keeps
/// warm (which may hold what the user typed).
pub const ERASURES_CHANNEL: &str = "taskledger_erasures";

/// Each user's data key, created on their first write, cached unwrapped.
/// Shared by the request path (sealing) and the readers that hold no
/// database row of the key (the live feed).
#[derive(Clone)]
pub struct Keyring {
    pool: PgPool,
    cache: Arc<Mutex<LruCache<String, Arc<DataKey>>>>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring").finish_non_exhaustive()
    }
}

impl Keyring {
    pub fn new(pool: PgPool) -> Self {
        let capacity = NonZeroUsize::new(CACHED_KEYS).expect("not zero").get();
        Self {
            pool,
            cache: Arc::new(Mutex::new(LruCache::new(capacity))),
        }
    }

    /// `user_id`'s data key, made and stored if they have none.
    pub async fn for_writing(&self, user_id: &str) -> Result<Arc<DataKey>, KeyError> {
        if let Some(key) = self.cache.lock().expect("not poisoned").get(user_id) {
            return Ok(key.clone());
        }
        let key = match self.stored(user_id).await? {
            Some(key) => key,
            None => {
                let (key, wrapped) = DataKey::generate(user_id)?;
                let inserted = sqlx::query(
                    "INSERT INTO user_keys (user_id, key_id, wrapped, master_key_id)
                     VALUES ($1, $2, $3, $4) ON CONFLICT (user_id) DO NOTHING",
                )
                .bind(user_id)
                .bind(&key.key_id)
                .bind(&wrapped)
                .bind(master()?.id())
                .execute(&self.pool)
                .await?
                .rows_affected();
                if inserted == 1 {
                    key
                } else {
                    // Another process made one first (and an erasure may
                    // have deleted it since: the writer tries again).
                    self.stored(user_id)
                        .await?
                        .ok_or_else(|| KeyError::Vanished(user_id.to_owned()))?
                }
            }
        };
        let key = Arc::new(key);
        self.cache
            .lock()
            .expect("not poisoned")
            .insert(user_id.to_owned(), key.clone());
        Ok(key)
    }

    /// The key to seal a message about `user_id`'s task with: theirs (made
    /// if they have none yet), or `None` once they are erased.
    pub async fn for_publishing(&self, user_id: &str) -> Result<Option<Arc<DataKey>>, KeyError> {
        if let Some(key) = self.cache.lock().expect("not poisoned").get(user_id) {
            return Ok(Some(key.clone()));
        }
        let erased: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM erasures WHERE user_id = $1)")
                .bind(user_id)
                .fetch_one(&self.pool)
                .await?;
        if erased {
            if let Some(key) = self.stored(user_id).await? {
                // They came back after the erasure: a key of their own again.
                let key = Arc::new(key);
                self.cache
                    .lock()
                    .expect("not poisoned")
                    .insert(user_id.to_owned(), key.clone());
                return Ok(Some(key));
            }
            return Ok(None);
        }
        self.for_writing(user_id).await.map(Some)
    }

    /// Forgets a cached key that the store no longer holds.
    pub fn forget(&self, user_id: &str) {
        self.cache.lock().expect("not poisoned").remove(user_id);
    }

    async fn stored(&self, user_id: &str) -> Result<Option<DataKey>, KeyError> {
        let row: Option<(String, Vec<u8>)> =
            sqlx::query_as("SELECT key_id, wrapped FROM user_keys WHERE user_id = $1")
                .bind(user_id)
                .fetch_optional(&self.pool)
                .await?;
        row.map(|(key_id, wrapped)| DataKey::unwrap(user_id, &key_id, &wrapped))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(user: &str) -> DataKey {
        install_master_key(MasterKey::local_development()).unwrap();
        DataKey::generate(user).unwrap().0
    }

    #[test]
    fn personal_fields_are_sealed_and_open_again() {
        let key = key("ada");
        let original = json!({"title": "canary", "description": "d", "tags": ["t"], "created_at": "x",
            "next_occurrence": {"title": "canary", "tags": ["t"], "due": 1}});
        let mut fields = original.clone();
        seal(&mut fields, &key, "task-1").unwrap();
        let text = fields.to_string();
        assert!(!text.contains("canary"), "{text}");
        assert_eq!(fields["created_at"], json!("x"));
        assert_eq!(fields["next_occurrence"]["due"], json!(1));
        assert_eq!(sealed_by(&fields), Some(("ada", key.key_id.as_str())));
        assert_eq!(open(&mut fields, Some(&key), "task-1"), Opened::Opened);
        assert_eq!(fields, original);
    }

    #[test]
    fn without_the_key_or_on_another_task_the_fields_read_as_erased() {
        let key = key("ada");
        let mut fields = json!({"title": "canary", "description": "d", "tags": ["t"],
            "next_occurrence": {"title": "c", "description": "d", "tags": ["t"]}});
        seal(&mut fields, &key, "task-1").unwrap();
        let mut moved = fields.clone();
        assert_eq!(open(&mut moved, Some(&key), "task-2"), Opened::Erased);
        let mut lost = fields.clone();
        assert_eq!(open(&mut lost, None, "task-1"), Opened::Erased);
        let erased = json!({"title": "", "description": null, "tags": [],
            "next_occurrence": {"title": "", "description": null, "tags": []}});
        assert_eq!(moved, erased);
        assert_eq!(lost, erased);
        let other = self::key("ada");
        let mut new_key = fields.clone();
        assert_eq!(open(&mut new_key, Some(&other), "task-1"), Opened::Erased);
    }

    #[test]
    fn events_without_personal_fields_stay_as_they_are() {
        let key = key("ada");
        let mut fields = json!({"completed_at": "x", "next_occurrence": null});
        seal(&mut fields, &key, "task-1").unwrap();
        assert_eq!(
            fields,
            json!({"completed_at": "x", "next_occurrence": null})
        );
        assert_eq!(open(&mut fields, None, "task-1"), Opened::Plain);
    }

    #[test]
    fn a_data_key_unwraps_only_for_its_user_and_id() {
        install_master_key(MasterKey::local_development()).unwrap();
        let (key, wrapped) = DataKey::generate("ada").unwrap();
        assert!(DataKey::unwrap("ada", &key.key_id, &wrapped).is_ok());
        assert!(DataKey::unwrap("bob", &key.key_id, &wrapped).is_err());
        assert!(DataKey::unwrap("ada", "000000000000", &wrapped).is_err());
        assert!(MasterKey::from_base64("short").is_err());
    }
}
