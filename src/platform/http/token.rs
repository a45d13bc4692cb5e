//! The API's bearer token: generated at random, compared in constant time,
//! and never printed by `Debug` so that it cannot reach a log by accident.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A bearer token. Its `Debug` is redacted and it has no `Display`: the
/// only ways to the text are [`Token::expose`] and [`Token::header`].
#[derive(Clone)]
pub struct Token(String);

impl Token {
    /// Wraps a token given by the operator.
    pub fn new(text: impl Into<String>) -> Token {
        Token(text.into())
    }

    /// A fresh random token: 32 bytes from the OS generator, in hex.
    pub fn generate() -> Result<Token, getrandom::Error> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)?;
        Ok(Token(bytes.iter().map(|b| format!("{b:02x}")).collect()))
    }

    /// The token's text, for the one place that must show it (`sim serve`
    /// printing the token it generated) or send it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The `Authorization` header value.
    pub fn header(&self) -> String {
        format!("Bearer {}", self.0)
    }

    /// Whether `offered` is this token. Both are hashed first so that the
    /// comparison takes the same time whatever the lengths and contents.
    pub fn matches(&self, offered: &str) -> bool {
        let ours = Sha256::digest(self.0.as_bytes());
        let theirs = Sha256::digest(offered.as_bytes());
        ours.ct_eq(&theirs).into()
    }

    /// Whether the token is usable: not empty, and only characters that
    /// can travel in a header.
    pub fn check(&self) -> Result<(), String> {
        if self.0.is_empty() {
            return Err("the token is empty".into());
        }
        if !self.0.chars().all(|c| c.is_ascii_graphic()) {
            return Err("the token may hold only printable ASCII without spaces".into());
        }
        Ok(())
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_are_long_random_and_redacted() {
        let a = Token::generate().unwrap();
        let b = Token::generate().unwrap();
        assert_eq!(a.expose().len(), 64);
        assert_ne!(a.expose(), b.expose());
        assert_eq!(format!("{a:?}"), "Token(<redacted>)");
        assert!(!format!("{:?}", Some(&a)).contains(a.expose()));
    }

    #[test]
    fn only_the_same_token_matches() {
        let t = Token::new("s3cret");
        assert!(t.matches("s3cret"));
        assert!(!t.matches("s3cre"));
        assert!(!t.matches("s3cret "));
        assert!(!t.matches(""));
    }

    #[test]
    fn unusable_tokens_are_refused() {
        assert!(Token::new("").check().is_err());
        assert!(Token::new("two words").check().is_err());
        assert!(Token::new("abc\n").check().is_err());
        assert!(Token::new("abc-123_X").check().is_ok());
    }
}
