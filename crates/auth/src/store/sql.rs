//! [`MemberStore`] over SQL: SQLite (embedded) and MySQL/MariaDB (distributed) through
//! sqlx's `Any` driver. Plain `?` placeholders work in both; the few statements that
//! differ are chosen by [`Dialect`]. Migrations are embedded and run at connect time.

use async_trait::async_trait;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};

use super::{
    CreateOutcome, EmailTokenRecord, Member, MemberStore, RefreshTokenRecord, RefreshTokenState, RotateOutcome,
    TokenPurpose,
};
use crate::error::StoreError;

/// The SQL engine behind the pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dialect {
    Sqlite,
    MySql,
}

/// Embedded migrations, in order, per engine. Each statement is idempotent
/// (`IF NOT EXISTS`), so two processes starting together cannot break each other.
const SQLITE_MIGRATIONS: &[(i64, &str)] = &[(1, include_str!("../../migrations/sqlite/0001_members.sql"))];
const MYSQL_MIGRATIONS: &[(i64, &str)] = &[(1, include_str!("../../migrations/mysql/0001_members.sql"))];

/// The SQL member store.
#[derive(Clone, Debug)]
pub struct SqlMemberStore {
    pool: AnyPool,
    dialect: Dialect,
}

impl SqlMemberStore {
    /// Connects to `sqlite://…` or `mysql://…` and runs the migrations.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let dialect = if url.starts_with("sqlite:") {
            Dialect::Sqlite
        } else if url.starts_with("mysql:") || url.starts_with("mariadb:") {
            Dialect::MySql
        } else {
            return Err(StoreError::Corrupt(format!("unsupported database URL scheme in {url:?}")));
        };
        let url = url.replacen("mariadb:", "mysql:", 1);
        let max_connections = match dialect {
            // SQLite has one writer; a few readers are plenty for the embedded mode.
            Dialect::Sqlite => 4,
            Dialect::MySql => 16,
        };
        let pool = AnyPoolOptions::new().max_connections(max_connections).connect(&url).await?;
        let store = SqlMemberStore { pool, dialect };
        store.migrate().await?;
        Ok(store)
    }

    /// Opens (creating if needed) the SQLite file at `path`.
    pub async fn open_sqlite(path: &std::path::Path) -> Result<Self, StoreError> {
        Self::connect(&format!("sqlite://{}?mode=rwc", path.display())).await
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        if self.dialect == Dialect::Sqlite {
            // WAL lets readers proceed during a write; it is a property of the file.
            sqlx::query("PRAGMA journal_mode=WAL").execute(&self.pool).await?;
        }
        sqlx::query("CREATE TABLE IF NOT EXISTS auth_migrations (version BIGINT NOT NULL PRIMARY KEY, applied_at BIGINT NOT NULL)")
            .execute(&self.pool)
            .await?;
        let migrations = match self.dialect {
            Dialect::Sqlite => SQLITE_MIGRATIONS,
            Dialect::MySql => MYSQL_MIGRATIONS,
        };
        for (version, script) in migrations {
            let applied = sqlx::query("SELECT version FROM auth_migrations WHERE version = ?")
                .bind(*version)
                .fetch_optional(&self.pool)
                .await?;
            if applied.is_some() {
                continue;
            }
            for statement in split_statements(script) {
                sqlx::query(&statement).execute(&self.pool).await?;
            }
            let insert = match self.dialect {
                Dialect::Sqlite => "INSERT OR IGNORE INTO auth_migrations (version, applied_at) VALUES (?, ?)",
                Dialect::MySql => "INSERT IGNORE INTO auth_migrations (version, applied_at) VALUES (?, ?)",
            };
            sqlx::query(insert).bind(*version).bind(now_secs()).execute(&self.pool).await?;
            tracing::info!(version, "auth schema migration applied");
        }
        Ok(())
    }
}

/// Splits a migration file into statements: `--` comment lines dropped, `;` at line end
/// ends a statement. (The files are ours; no statement holds a `;` inside a string.)
fn split_statements(script: &str) -> Vec<String> {
    let mut statements = Vec::new();
    let mut current = String::new();
    for line in script.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("--") || trimmed.is_empty() {
            continue;
        }
        current.push_str(line);
        current.push('\n');
        if trimmed.ends_with(';') {
            let statement = current.trim().trim_end_matches(';').to_owned();
            statements.push(statement);
            current.clear();
        }
    }
    if !current.trim().is_empty() {
        statements.push(current.trim().to_owned());
    }
    statements
}

fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

fn member_from_row(row: &AnyRow) -> Result<Member, StoreError> {
    Ok(Member {
        id: row.try_get("id")?,
        email: row.try_get("email")?,
        password_hash: row.try_get("password_hash")?,
        verified_at: row.try_get("verified_at")?,
        created_at: row.try_get("created_at")?,
    })
}

const MEMBER_COLUMNS: &str = "id, email, password_hash, verified_at, created_at";

#[async_trait]
impl MemberStore for SqlMemberStore {
    async fn create_member(&self, member: &Member) -> Result<CreateOutcome, StoreError> {
        let result = sqlx::query(
            "INSERT INTO members (id, email, password_hash, verified_at, created_at, password_changed_at) \
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(&member.id)
        .bind(&member.email)
        .bind(&member.password_hash)
        .bind(member.verified_at)
        .bind(member.created_at)
        .bind(member.created_at)
        .execute(&self.pool)
        .await;
        match result {
            Ok(_) => Ok(CreateOutcome::Created),
            Err(sqlx::Error::Database(error)) if error.is_unique_violation() => Ok(CreateOutcome::EmailTaken),
            Err(error) => Err(error.into()),
        }
    }

    async fn member_by_email(&self, email: &str) -> Result<Option<Member>, StoreError> {
        let row = sqlx::query(&format!("SELECT {MEMBER_COLUMNS} FROM members WHERE email = ?"))
            .bind(email)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(member_from_row).transpose()
    }

    async fn member_by_id(&self, user_id: &str) -> Result<Option<Member>, StoreError> {
        let row = sqlx::query(&format!("SELECT {MEMBER_COLUMNS} FROM members WHERE id = ?"))
            .bind(user_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(member_from_row).transpose()
    }

    async fn set_password(&self, user_id: &str, password_hash: &str, now: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE members SET password_hash = ?, password_changed_at = ? WHERE id = ?")
            .bind(password_hash)
            .bind(now)
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn mark_verified(&self, user_id: &str, now: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE members SET verified_at = ? WHERE id = ? AND verified_at IS NULL")
            .bind(now)
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn insert_email_token(&self, token: &EmailTokenRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO email_tokens (token_hash, user_id, purpose, password_hash, created_at, expires_at, used_at) \
             VALUES (?, ?, ?, ?, ?, ?, NULL)",
        )
        .bind(&token.token_hash)
        .bind(&token.user_id)
        .bind(token.purpose.as_str())
        .bind(token.password_hash.clone())
        .bind(token.created_at)
        .bind(token.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn consume_email_token(
        &self,
        token_hash: &str,
        purpose: TokenPurpose,
        now: i64,
    ) -> Result<Option<EmailTokenRecord>, StoreError> {
        // The conditional UPDATE is the single-use guarantee: of two concurrent
        // redemptions only one sees a row change.
        let result = sqlx::query(
            "UPDATE email_tokens SET used_at = ? \
             WHERE token_hash = ? AND purpose = ? AND used_at IS NULL AND expires_at > ?",
        )
        .bind(now)
        .bind(token_hash)
        .bind(purpose.as_str())
        .bind(now)
        .execute(&self.pool)
        .await?;
        if result.rows_affected() != 1 {
            return Ok(None);
        }
        let row = sqlx::query(
            "SELECT token_hash, user_id, password_hash, created_at, expires_at FROM email_tokens WHERE token_hash = ?",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(EmailTokenRecord {
                token_hash: row.try_get("token_hash")?,
                user_id: row.try_get("user_id")?,
                purpose,
                password_hash: row.try_get("password_hash")?,
                created_at: row.try_get("created_at")?,
                expires_at: row.try_get("expires_at")?,
            })
        })
        .transpose()
    }

    async fn peek_email_token(
        &self,
        token_hash: &str,
        purpose: TokenPurpose,
        now: i64,
    ) -> Result<Option<EmailTokenRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT token_hash, user_id, password_hash, created_at, expires_at FROM email_tokens \
             WHERE token_hash = ? AND purpose = ? AND used_at IS NULL AND expires_at > ?",
        )
        .bind(token_hash)
        .bind(purpose.as_str())
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(EmailTokenRecord {
                token_hash: row.try_get("token_hash")?,
                user_id: row.try_get("user_id")?,
                purpose,
                password_hash: row.try_get("password_hash")?,
                created_at: row.try_get("created_at")?,
                expires_at: row.try_get("expires_at")?,
            })
        })
        .transpose()
    }

    async fn invalidate_email_tokens(&self, user_id: &str, purpose: TokenPurpose, now: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE email_tokens SET used_at = ? WHERE user_id = ? AND purpose = ? AND used_at IS NULL")
            .bind(now)
            .bind(user_id)
            .bind(purpose.as_str())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn create_family(&self, first: &RefreshTokenRecord) -> Result<(), StoreError> {
        let mut transaction = self.pool.begin().await?;
        sqlx::query("INSERT INTO token_families (family_id, user_id, created_at, revoked_at) VALUES (?, ?, ?, NULL)")
            .bind(&first.family_id)
            .bind(&first.user_id)
            .bind(first.created_at)
            .execute(&mut *transaction)
            .await?;
        insert_refresh(&mut transaction, first).await?;
        transaction.commit().await?;
        Ok(())
    }

    async fn refresh_token(&self, token_hash: &str) -> Result<Option<RefreshTokenState>, StoreError> {
        let row = sqlx::query(
            "SELECT r.token_hash, r.family_id, r.user_id, r.created_at, r.expires_at, r.used_at, f.revoked_at, \
             f.created_at AS family_created_at \
             FROM refresh_tokens r JOIN token_families f ON f.family_id = r.family_id \
             WHERE r.token_hash = ?",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(RefreshTokenState {
                record: RefreshTokenRecord {
                    token_hash: row.try_get("token_hash")?,
                    family_id: row.try_get("family_id")?,
                    user_id: row.try_get("user_id")?,
                    created_at: row.try_get("created_at")?,
                    expires_at: row.try_get("expires_at")?,
                },
                used_at: row.try_get("used_at")?,
                family_revoked_at: row.try_get("revoked_at")?,
                family_created_at: row.try_get("family_created_at")?,
            })
        })
        .transpose()
    }

    async fn add_refresh_token(&self, token: &RefreshTokenRecord) -> Result<(), StoreError> {
        let mut transaction = self.pool.begin().await?;
        insert_refresh(&mut transaction, token).await?;
        transaction.commit().await?;
        Ok(())
    }

    async fn rotate_refresh_token(
        &self,
        old_hash: &str,
        next: &RefreshTokenRecord,
        now: i64,
    ) -> Result<RotateOutcome, StoreError> {
        let mut transaction = self.pool.begin().await?;
        let result = sqlx::query("UPDATE refresh_tokens SET used_at = ? WHERE token_hash = ? AND used_at IS NULL")
            .bind(now)
            .bind(old_hash)
            .execute(&mut *transaction)
            .await?;
        if result.rows_affected() != 1 {
            transaction.rollback().await?;
            return Ok(RotateOutcome::AlreadyUsed);
        }
        insert_refresh(&mut transaction, next).await?;
        transaction.commit().await?;
        Ok(RotateOutcome::Rotated)
    }

    async fn revoke_family(&self, family_id: &str, now: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE token_families SET revoked_at = ? WHERE family_id = ? AND revoked_at IS NULL")
            .bind(now)
            .bind(family_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn revoke_member_families(&self, user_id: &str, keep: Option<&str>, now: i64) -> Result<u64, StoreError> {
        let result = sqlx::query(
            "UPDATE token_families SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL AND family_id <> ?",
        )
        .bind(now)
        .bind(user_id)
        .bind(keep.unwrap_or(""))
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected())
    }

    async fn family_active(&self, family_id: &str) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT family_id FROM token_families WHERE family_id = ? AND revoked_at IS NULL")
            .bind(family_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    async fn load_deck(&self, user_id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let row =
            sqlx::query("SELECT deck FROM decks WHERE user_id = ?").bind(user_id).fetch_optional(&self.pool).await?;
        Ok(row.map(|row| row.try_get::<Vec<u8>, _>("deck")).transpose()?)
    }

    async fn save_deck(&self, user_id: &str, deck: &[u8], now: i64) -> Result<(), StoreError> {
        let statement = match self.dialect {
            Dialect::Sqlite => {
                "INSERT INTO decks (user_id, deck, updated_at) VALUES (?, ?, ?) \
                 ON CONFLICT (user_id) DO UPDATE SET deck = excluded.deck, updated_at = excluded.updated_at"
            }
            Dialect::MySql => {
                "INSERT INTO decks (user_id, deck, updated_at) VALUES (?, ?, ?) \
                 ON DUPLICATE KEY UPDATE deck = VALUES(deck), updated_at = VALUES(updated_at)"
            }
        };
        sqlx::query(statement).bind(user_id).bind(deck.to_vec()).bind(now).execute(&self.pool).await?;
        Ok(())
    }
}

async fn insert_refresh(
    transaction: &mut sqlx::Transaction<'_, sqlx::Any>,
    record: &RefreshTokenRecord,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO refresh_tokens (token_hash, family_id, user_id, created_at, expires_at, used_at) \
         VALUES (?, ?, ?, ?, ?, NULL)",
    )
    .bind(&record.token_hash)
    .bind(&record.family_id)
    .bind(&record.user_id)
    .bind(record.created_at)
    .bind(record.expires_at)
    .execute(&mut **transaction)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::split_statements;

    #[test]
    fn migrations_split_into_statements() {
        let statements = split_statements(include_str!("../../migrations/sqlite/0001_members.sql"));
        assert_eq!(statements.len(), 8);
        assert!(statements.iter().all(|s| !s.ends_with(';') && !s.starts_with("--")));
    }
}
