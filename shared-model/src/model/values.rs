//! Validated value types: a value of `Email`, `WebUrl`, `Phone`, `Locale`, `CountryCode` or
//! `CurrencyCode` can only hold a valid value, built at the API edge with `parse`, whose error is
//! the rule the input broke (used verbatim in 422 responses). Each documents the pattern `parse`
//! accepts, which a test keeps equal to it.

use std::fmt;

use serde::{Deserialize, Serialize};

/// ISO 3166-1 alpha-2 codes (officially assigned), sorted.
const ISO_3166_ALPHA2: &str = "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW";

macro_rules! value_type {
    ($(#[doc = $doc:literal])* $name:ident, $example:literal, $pattern:expr, $max:expr) => {
        $(#[doc = $doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, sqlx::Type)]
        #[serde(transparent)]
        #[sqlx(transparent)]
        pub struct $name(String);

        impl utoipa::PartialSchema for $name {
            /// A string with the pattern `parse` accepts (surrounding white space aside).
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::schema::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .description(Some(concat!($($doc),*).trim()))
                    .pattern(Some($pattern))
                    .max_length(Some($max))
                    .examples([serde_json::json!($example)])
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// A value read back from the service's own store, where only values `parse`
            /// made are written: not checked again (as with its `sqlx` decoding). Debug builds
            /// check it.
            pub fn from_stored(s: String) -> Self {
                debug_assert!(
                    $name::parse(&s).is_ok_and(|v| v.0 == s),
                    "a stored {} that parse would not have made: {s:?}",
                    stringify!($name)
                );
                Self(s)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                $name::parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

value_type!(
    /// An ISO 3166-1 alpha-2 country code (officially assigned; any case, stored upper case).
    CountryCode, "US", any_case_alternatives(ISO_3166_ALPHA2), 2
);
value_type!(
    /// An e-mail address (syntax checked, domain lower-cased).
    Email, "ada@example.com", EMAIL_PATTERN.to_string(), 254
);
value_type!(
    /// An absolute http(s) URL of at most 2048 characters.
    WebUrl, "https://example.com", WEB_URL_PATTERN.to_string(), 2048
);
value_type!(
    /// A phone number: `+` then 8 to 15 digits, the first not 0, with optional separators
    /// (space, `-`, `.`, parentheses); stored in E.164 form.
    Phone, "+14155550100", PHONE_PATTERN.to_string(), 64
);
value_type!(
    /// An ISO 4217 active currency code (any case, stored upper case).
    CurrencyCode, "EUR", any_case_alternatives(ISO_4217), 3
);
value_type!(
    /// A BCP 47 language tag of the form `ll`, `ll-RR` or `ll-Ssss-RR` (`_` also separates).
    Locale, "en-US", LOCALE_PATTERN.to_string(), 12
);

/// What `Email::parse` accepts: a local part of at most 64 characters of the RFC 5322 atom set
/// with single dots inside, and a domain of at least two labels (letters, digits, inner
/// hyphens, at most 63 each) ending in an alphabetic top-level label.
const EMAIL_PATTERN: &str = "^(?=[^@]{1,64}@)[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\\.)+[A-Za-z]{2,63}$";

/// URLs `WebUrl::parse` accepts: `http` or `https`, a host name whose last label starts with a
/// letter, an optional port, and a path, query and fragment of unreserved and sub-delimiter
/// characters (what the document promises; the parser accepts more).
const WEB_URL_PATTERN: &str = "^https?://(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\\.)*[A-Za-z](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?::[0-9]{1,4})?(?:/[A-Za-z0-9._~!$&'()*+,;=:@/-]*)?(?:\\?[A-Za-z0-9._~!$&'()*+,;=:@/?-]*)?(?:#[A-Za-z0-9._~!$&'()*+,;=:@/?-]*)?$";

/// What `Phone::parse` accepts.
const PHONE_PATTERN: &str = "^\\+[ .()-]*[1-9](?:[ .()-]*[0-9]){7,14}[ .()-]*$";

/// What `Locale::parse` accepts.
const LOCALE_PATTERN: &str = "^[A-Za-z]{2,3}(?:[-_][A-Za-z]{4})?(?:[-_](?:[A-Za-z]{2}|[0-9]{3}))?$";

/// `^(?:[Aa][Dd]|...)$` for a space-separated list of upper-case codes.
fn any_case_alternatives(codes: &str) -> String {
    let alternatives: Vec<String> = codes
        .split(' ')
        .map(|code| {
            code.chars()
                .map(|c| format!("[{c}{}]", c.to_ascii_lowercase()))
                .collect()
        })
        .collect();
    format!("^(?:{})$", alternatives.join("|"))
}

/// ISO 4217 active currency codes, sorted.
const ISO_4217: &str = "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP BYN BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VED VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG";

impl CurrencyCode {
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        let upper = s.trim().to_ascii_uppercase();
        if upper.len() == 3 && ISO_4217.split(' ').any(|c| c == upper) {
            Ok(Self(upper))
        } else {
            Err("must be an ISO 4217 currency code")
        }
    }
}

impl CountryCode {
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        const RULE: &str = "must be an ISO 3166-1 alpha-2 country code";
        let &[a, b] = s.trim().as_bytes() else {
            return Err(RULE);
        };
        let code = [a.to_ascii_uppercase(), b.to_ascii_uppercase()];
        // The list is sorted, one code every three bytes: a binary search, no allocation.
        let list = ISO_3166_ALPHA2.as_bytes();
        let n = list.len().div_ceil(3);
        let (mut lo, mut hi) = (0, n);
        while lo < hi {
            let mid = (lo + hi) / 2;
            match list[mid * 3..mid * 3 + 2].cmp(&code[..]) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => {
                    return Ok(Self(String::from_utf8_lossy(&code).into_owned()));
                }
            }
        }
        Err(RULE)
    }
}

fn valid_domain(domain: &str) -> bool {
    let labels: Vec<&str> = domain.split('.').collect();
    domain.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
        && labels
            .last()
            .is_some_and(|tld| tld.len() >= 2 && tld.chars().all(|c| c.is_ascii_alphabetic()))
}

impl Email {
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        const RULE: &str = "must be an e-mail address such as name@example.com";
        let s = s.trim();
        let (local, domain) = s.rsplit_once('@').ok_or(RULE)?;
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && local
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~.-".contains(c));
        let domain = domain.to_ascii_lowercase();
        if s.len() <= 254 && local_ok && valid_domain(&domain) {
            Ok(Self(format!("{local}@{domain}")))
        } else {
            Err(RULE)
        }
    }

    /// The lower-case domain part.
    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map(|(_, d)| d).unwrap_or_default()
    }
}

impl WebUrl {
    /// The lower-case host, without a leading `www.`: what a search by domain matches.
    pub fn domain(&self) -> Option<String> {
        let url = reqwest::Url::parse(&self.0).ok()?;
        let host = url.host_str()?.to_ascii_lowercase();
        Some(
            host.strip_prefix("www.")
                .map(str::to_string)
                .unwrap_or(host),
        )
    }

    pub fn parse(s: &str) -> Result<Self, &'static str> {
        const RULE: &str = "must be an absolute http or https URL of at most 2048 characters";
        let s = s.trim();
        if s.len() > 2048 {
            return Err(RULE);
        }
        let url = reqwest::Url::parse(s).map_err(|_| RULE)?;
        match (url.scheme(), url.host_str()) {
            ("http" | "https", Some(host)) if !host.is_empty() => Ok(Self(url.to_string())),
            _ => Err(RULE),
        }
    }
}

impl Phone {
    /// Accepts common separators (spaces, dashes, dots, parentheses) and stores E.164.
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        const RULE: &str = "must be an E.164 phone number: '+' then 8 to 15 digits";
        let s = s.trim();
        if s.len() > 64 {
            return Err(RULE);
        }
        let rest = s.strip_prefix('+').ok_or(RULE)?;
        if !rest
            .chars()
            .all(|c| c.is_ascii_digit() || " -.()".contains(c))
        {
            return Err(RULE);
        }
        let digits: String = rest.chars().filter(char::is_ascii_digit).collect();
        if (8..=15).contains(&digits.len()) && !digits.starts_with('0') {
            Ok(Self(format!("+{digits}")))
        } else {
            Err(RULE)
        }
    }
}

impl Locale {
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        const RULE: &str = "must be a language tag such as 'en', 'en-US' or 'zh-Hant-TW'";
        let parts: Vec<&str> = s.trim().split(['-', '_']).collect();
        let lang = parts.first().ok_or(RULE)?;
        if !(2..=3).contains(&lang.len()) || !lang.chars().all(|c| c.is_ascii_alphabetic()) {
            return Err(RULE);
        }
        let mut out = lang.to_ascii_lowercase();
        let mut rest = &parts[1..];
        if let Some(script) = rest.first().filter(|p| p.len() == 4) {
            if !script.chars().all(|c| c.is_ascii_alphabetic()) {
                return Err(RULE);
            }
            out.push('-');
            out.push_str(&script[..1].to_ascii_uppercase());
            out.push_str(&script[1..].to_ascii_lowercase());
            rest = &rest[1..];
        }
        if let Some(region) = rest.first() {
            let alpha = region.len() == 2 && region.chars().all(|c| c.is_ascii_alphabetic());
            let numeric = region.len() == 3 && region.chars().all(|c| c.is_ascii_digit());
            if !(alpha || numeric) {
                return Err(RULE);
            }
            out.push('-');
            out.push_str(&region.to_ascii_uppercase());
            rest = &rest[1..];
        }
        if rest.is_empty() {
            Ok(Self(out))
        } else {
            Err(RULE)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn currency_codes() {
        assert_eq!(CurrencyCode::parse("eur").unwrap().as_str(), "EUR");
        assert!(CurrencyCode::parse("EU").is_err());
        assert!(CurrencyCode::parse("XXX").is_err());
    }

    #[test]
    fn country_codes() {
        assert_eq!(ISO_3166_ALPHA2.split(' ').count(), 249);
        assert_eq!(CountryCode::parse("de").unwrap().as_str(), "DE");
        assert!(CountryCode::parse("XX").is_err());
        assert!(CountryCode::parse("USA").is_err());
        assert!(CountryCode::parse("").is_err());
        assert!(CountryCode::parse("é").is_err());
        assert_eq!(CountryCode::parse(" zw ").unwrap().as_str(), "ZW");
        // The binary search relies on a sorted list of codes, each found.
        let codes: Vec<&str> = ISO_3166_ALPHA2.split(' ').collect();
        assert!(
            codes.windows(2).all(|w| w[0] < w[1]),
            "sorted, no duplicates"
        );
        for c in &codes {
            assert_eq!(c.len(), 2);
            assert_eq!(CountryCode::parse(c).unwrap().as_str(), *c);
        }
        for a in b'A'..=b'Z' {
            for b in b'A'..=b'Z' {
                let c = String::from_utf8(vec![a, b]).unwrap();
                assert_eq!(CountryCode::parse(&c).is_ok(), codes.contains(&c.as_str()));
            }
        }
    }

    #[test]
    fn emails() {
        assert_eq!(
            Email::parse("Ada@Example.COM").unwrap().as_str(),
            "Ada@example.com"
        );
        assert_eq!(
            Email::parse("a.b+c@mail.example.org").unwrap().domain(),
            "mail.example.org"
        );
        for bad in [
            "",
            "no-at",
            "@example.com",
            "a@b",
            "a@-x.com",
            "a..b@example.com",
            "a b@x.io",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn urls_phones_locales() {
        assert!(WebUrl::parse("https://example.com/x").is_ok());
        assert!(WebUrl::parse("ftp://example.com").is_err());
        assert!(WebUrl::parse("example.com").is_err());
        let domain = |s| WebUrl::parse(s).unwrap().domain();
        assert_eq!(
            domain("https://WWW.Example.com:8080/x").as_deref(),
            Some("example.com")
        );
        assert_eq!(
            domain("http://shop.example.co.uk").as_deref(),
            Some("shop.example.co.uk")
        );
        assert_eq!(
            Phone::parse("+1 (415) 555-0100").unwrap().as_str(),
            "+14155550100"
        );
        assert!(Phone::parse("4155550100").is_err());
        assert!(Phone::parse("+12").is_err());
        assert_eq!(Locale::parse("en_us").unwrap().as_str(), "en-US");
        assert_eq!(Locale::parse("zh-hant-tw").unwrap().as_str(), "zh-Hant-TW");
        assert_eq!(Locale::parse("es-419").unwrap().as_str(), "es-419");
        assert!(Locale::parse("english").is_err());
        assert!(Locale::parse("en-US-x").is_err());
    }

    /// The documented patterns accept what `parse` accepts (the e-mail pattern's look-ahead,
    /// which the `regex` crate lacks, is checked as a length).
    #[test]
    fn the_documented_patterns_match_what_parse_accepts() {
        fn agree(pattern: &str, parse: fn(&str) -> bool, samples: &[&str]) {
            let lookahead = "(?=[^@]{1,64}@)";
            let re = regex::Regex::new(&pattern.replace(lookahead, "")).unwrap();
            for s in samples {
                let documented = re.is_match(s)
                    && (!pattern.contains(lookahead)
                        || s.split('@')
                            .next()
                            .is_some_and(|l| (1..=64).contains(&l.len())));
                assert_eq!(documented, parse(s), "{pattern} on {s:?}");
            }
        }
        agree(
            EMAIL_PATTERN,
            |s| Email::parse(s).is_ok(),
            &[
                "ada@example.com",
                "a.b+c@mail.example.org",
                "x@y.z",
                "a..b@x.io",
                ".a@x.io",
                "a@-x.io",
                "a@x.i0",
                "a@x",
                &format!("{}@x.io", "a".repeat(65)),
                &format!("{}@x.io", "a".repeat(64)),
                "a@b@c.io",
                "o'hara@x.io",
            ],
        );
        agree(
            PHONE_PATTERN,
            |s| Phone::parse(s).is_ok(),
            &[
                "+14155550100",
                "+1 (415) 555-0100",
                "+0123456789",
                "+1234567",
                "+12345678",
                "+1234567890123456",
                "14155550100",
                "+1 415 555 0100x",
                "+-1.2.3.4.5.6.7.8",
            ],
        );
        agree(
            LOCALE_PATTERN,
            |s| Locale::parse(s).is_ok(),
            &[
                "en",
                "en-US",
                "zh-Hant-TW",
                "es-419",
                "en_us",
                "e",
                "english",
                "en-1234",
                "en--US",
                "en-US-x",
                "abc-Abcd-123",
                "en-Hant",
            ],
        );
        // The URL pattern is narrower than the parser (which also takes IDN hosts and
        // escapes what needs it): what it allows is accepted.
        let url = regex::Regex::new(WEB_URL_PATTERN).unwrap();
        for s in [
            "https://example.com",
            "http://a.b/c?d=e#f",
            "https://x.io:8080/p",
            "http://localhost",
            "https://a-b.c/~x/(y)/*;z=1:2@3",
        ] {
            assert!(url.is_match(s) && WebUrl::parse(s).is_ok(), "{s}");
        }
        for s in [
            "ftp://x.io",
            "https://",
            "https://1.2.3.4444",
            "http://x.io:99999",
        ] {
            assert!(!url.is_match(s), "{s}");
        }
        let country = any_case_alternatives(ISO_3166_ALPHA2);
        agree(
            &country,
            |s| CountryCode::parse(s).is_ok(),
            &["US", "us", "uS", "XX", "USA", "u"],
        );
        let currency = any_case_alternatives(ISO_4217);
        agree(
            &currency,
            |s| CurrencyCode::parse(s).is_ok(),
            &["EUR", "eur", "EURO", "XXX", "US"],
        );
    }
}
