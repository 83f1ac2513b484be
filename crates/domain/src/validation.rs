//! Input rules shared by every entry point (HTTP API, CLI), so a value that is refused in
//! one place is refused everywhere with the same words.

use std::collections::BTreeMap;

/// Problems with individual fields, keyed by field name; serialized as the `details.fields`
/// object of a 400 answer.
pub type FieldErrors = BTreeMap<String, String>;

const MAX_EMAIL_LEN: usize = 254;
const MIN_PASSWORD_LEN: usize = 10;
const MAX_PASSWORD_LEN: usize = 256;
const MAX_ACCOUNT_NAME_LEN: usize = 100;

/// Normalizes an email (trimmed, lower-case) or says why it is not one.
pub fn validate_email(email: &str) -> Result<String, String> {
    let email = email.trim().to_lowercase();
    if email.is_empty() {
        return Err("is required".into());
    }
    if email.len() > MAX_EMAIL_LEN {
        return Err(format!("must be at most {MAX_EMAIL_LEN} characters"));
    }
    let Some((local, domain)) = email.split_once('@') else {
        return Err("must be an email address like name@example.com".into());
    };
    let domain_ok = domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && domain
            .chars()
            .all(|c| c.is_alphanumeric() || c == '.' || c == '-');
    let local_ok = !local.is_empty()
        && !local
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '@');
    if !domain_ok || !local_ok {
        return Err("must be an email address like name@example.com".into());
    }
    Ok(email)
}

/// Refuses passwords that are short, very long (hashing cost), or trivially guessable.
pub fn validate_password(password: &str, email: &str) -> Result<(), String> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_LEN {
        return Err(format!("must be at least {MIN_PASSWORD_LEN} characters"));
    }
    if chars > MAX_PASSWORD_LEN {
        return Err(format!("must be at most {MAX_PASSWORD_LEN} characters"));
    }
    let mut distinct: Vec<char> = password.chars().collect();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() < 4 {
        return Err("is too easy to guess: use more different characters".into());
    }
    let lowered = password.to_lowercase();
    let local_part = email.split('@').next().unwrap_or_default();
    if lowered == email.to_lowercase() || (!local_part.is_empty() && lowered == local_part) {
        return Err("must not be your email address".into());
    }
    const COMMON: [&str; 8] = [
        "password123",
        "password1234",
        "1234567890",
        "qwertyuiop",
        "letmein123",
        "iloveyou123",
        "administrator",
        "welcome123",
    ];
    if COMMON.contains(&lowered.as_str()) {
        return Err("is a commonly used password: choose another".into());
    }
    Ok(())
}

/// Trims an account name and checks its length.
pub fn validate_account_name(name: &str) -> Result<String, String> {
    let name = name.trim();
    if name.is_empty() {
        return Err("must not be empty".into());
    }
    if name.chars().count() > MAX_ACCOUNT_NAME_LEN {
        return Err(format!("must be at most {MAX_ACCOUNT_NAME_LEN} characters"));
    }
    if name.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    Ok(name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalized_and_checked() {
        assert_eq!(
            validate_email("  Ann@Example.COM ").unwrap(),
            "ann@example.com"
        );
        for bad in [
            "",
            "ann",
            "ann@",
            "@example.com",
            "ann@example",
            "a b@example.com",
            "ann@exa..mple.com",
        ] {
            assert!(validate_email(bad).is_err(), "{bad:?} should be refused");
        }
        assert!(validate_email(&format!("{}@example.com", "a".repeat(250))).is_err());
    }

    #[test]
    fn weak_passwords_are_refused_with_a_reason() {
        assert!(validate_password("short", "a@b.co")
            .unwrap_err()
            .contains("at least 10"));
        assert!(validate_password("aaaaaaaaaaaa", "a@b.co")
            .unwrap_err()
            .contains("guess"));
        assert!(validate_password("Password123", "a@b.co")
            .unwrap_err()
            .contains("commonly"));
        assert!(validate_password("ann.smith@example.com", "ann.smith@example.com").is_err());
        assert!(validate_password(&"ab1!".repeat(70), "a@b.co")
            .unwrap_err()
            .contains("at most"));
        assert!(validate_password("correct horse battery", "a@b.co").is_ok());
    }

    #[test]
    fn account_names_are_trimmed_and_bounded() {
        assert_eq!(validate_account_name("  Shop  ").unwrap(), "Shop");
        assert!(validate_account_name("   ").is_err());
        assert!(validate_account_name(&"x".repeat(101)).is_err());
        assert!(validate_account_name("bad\u{0}name").is_err());
    }
}
