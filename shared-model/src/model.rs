//! Domain enums and validated value types shared by every service.
//!
//! Value types follow "parse, don't validate": a value of `Email`, `WebUrl`, `Phone`, `Locale`
//! or `CountryCode` can only hold a valid value, built at the API edge with `parse`, whose error
//! is the rule the input broke (used verbatim in 422 responses).

use std::fmt;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
        pub enum $name {
            $(#[serde(rename = $text)] #[schema(rename = $text)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(&self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            pub fn parse(s: &str) -> Option<Self> {
                match s { $($text => Some($name::$variant),)+ _ => None }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl sqlx::Type<sqlx::Postgres> for $name {
            fn type_info() -> sqlx::postgres::PgTypeInfo {
                <String as sqlx::Type<sqlx::Postgres>>::type_info()
            }
            fn compatible(ty: &sqlx::postgres::PgTypeInfo) -> bool {
                <String as sqlx::Type<sqlx::Postgres>>::compatible(ty)
            }
        }

        impl<'q> sqlx::Encode<'q, sqlx::Postgres> for $name {
            fn encode_by_ref(
                &self,
                buf: &mut sqlx::postgres::PgArgumentBuffer,
            ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
                <&str as sqlx::Encode<sqlx::Postgres>>::encode_by_ref(&self.as_str(), buf)
            }
        }

        impl<'r> sqlx::Decode<'r, sqlx::Postgres> for $name {
            fn decode(value: sqlx::postgres::PgValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
                let s = <&str as sqlx::Decode<sqlx::Postgres>>::decode(value)?;
                $name::parse(s).ok_or_else(|| format!("unknown {} value {s:?}", stringify!($name)).into())
            }
        }
    };
}

string_enum!(
    /// Whether a customer (or client) is an organisation or a person.
    CustomerType { Business = "business", Consumer = "consumer" }
);

string_enum!(
    /// Lifecycle status of a customer account.
    CustomerStatus { Active = "active", Deactivated = "deactivated" }
);

string_enum!(
    /// Why a customer leaves (deactivation feedback). `cascade` is set by the platform when a
    /// parent customer's deactivation, or its client's disabling or deletion, deactivates a
    /// provisioned customer; callers cannot give it.
    DeactivationReason {
        TooExpensive = "too_expensive",
        MissingFeatures = "missing_features",
        SwitchedProvider = "switched_provider",
        NotUsing = "not_using",
        TechnicalIssues = "technical_issues",
        PoorSupport = "poor_support",
        BusinessClosed = "business_closed",
        NonPayment = "non_payment",
        Other = "other",
        Cascade = "cascade",
    }
);

string_enum!(
    /// Whether a client is an organisation or a person.
    ClientType { Business = "business", Individual = "individual" }
);

string_enum!(
    /// Where a client stands in its relationship with the customer.
    ClientStatus {
        Lead = "lead",
        Active = "active",
        Inactive = "inactive",
        Churned = "churned",
    }
);

string_enum!(
    /// How a client came to the customer.
    ClientSource {
        Direct = "direct",
        Referral = "referral",
        Partner = "partner",
        Marketing = "marketing",
        Other = "other",
    }
);

string_enum!(
    /// The 11 GICS sectors.
    IndustrySector {
        Energy = "energy",
        Materials = "materials",
        Industrials = "industrials",
        ConsumerDiscretionary = "consumer_discretionary",
        ConsumerStaples = "consumer_staples",
        HealthCare = "health_care",
        Financials = "financials",
        InformationTechnology = "information_technology",
        CommunicationServices = "communication_services",
        Utilities = "utilities",
        RealEstate = "real_estate",
    }
);

string_enum!(
    /// The 25 GICS industry groups; each belongs to exactly one sector.
    IndustryGroup {
        Energy = "energy",
        Materials = "materials",
        CapitalGoods = "capital_goods",
        CommercialProfessionalServices = "commercial_professional_services",
        Transportation = "transportation",
        AutomobilesComponents = "automobiles_components",
        ConsumerDurablesApparel = "consumer_durables_apparel",
        ConsumerServices = "consumer_services",
        ConsumerDiscretionaryDistributionRetail = "consumer_discretionary_distribution_retail",
        ConsumerStaplesDistributionRetail = "consumer_staples_distribution_retail",
        FoodBeverageTobacco = "food_beverage_tobacco",
        HouseholdPersonalProducts = "household_personal_products",
        HealthCareEquipmentServices = "health_care_equipment_services",
        PharmaceuticalsBiotechnologyLifeSciences = "pharmaceuticals_biotechnology_life_sciences",
        Banks = "banks",
        FinancialServices = "financial_services",
        Insurance = "insurance",
        SoftwareServices = "software_services",
        TechnologyHardwareEquipment = "technology_hardware_equipment",
        SemiconductorsEquipment = "semiconductors_equipment",
        TelecommunicationServices = "telecommunication_services",
        MediaEntertainment = "media_entertainment",
        Utilities = "utilities",
        EquityReits = "equity_reits",
        RealEstateManagementDevelopment = "real_estate_management_development",
    }
);

impl IndustryGroup {
    /// The GICS sector this industry group belongs to.
    pub fn sector(&self) -> IndustrySector {
        use IndustryGroup as G;
        use IndustrySector as S;
        match self {
            G::Energy => S::Energy,
            G::Materials => S::Materials,
            G::CapitalGoods | G::CommercialProfessionalServices | G::Transportation => {
                S::Industrials
            }
            G::AutomobilesComponents
            | G::ConsumerDurablesApparel
            | G::ConsumerServices
            | G::ConsumerDiscretionaryDistributionRetail => S::ConsumerDiscretionary,
            G::ConsumerStaplesDistributionRetail
            | G::FoodBeverageTobacco
            | G::HouseholdPersonalProducts => S::ConsumerStaples,
            G::HealthCareEquipmentServices | G::PharmaceuticalsBiotechnologyLifeSciences => {
                S::HealthCare
            }
            G::Banks | G::FinancialServices | G::Insurance => S::Financials,
            G::SoftwareServices | G::TechnologyHardwareEquipment | G::SemiconductorsEquipment => {
                S::InformationTechnology
            }
            G::TelecommunicationServices | G::MediaEntertainment => S::CommunicationServices,
            G::Utilities => S::Utilities,
            G::EquityReits | G::RealEstateManagementDevelopment => S::RealEstate,
        }
    }
}

string_enum!(
    /// Legal form of a business.
    BusinessClassification {
        Llc = "llc",
        CCorp = "c_corp",
        SCorp = "s_corp",
        SoleProprietorship = "sole_proprietorship",
        Partnership = "partnership",
        Nonprofit = "nonprofit",
        Cooperative = "cooperative",
        Government = "government",
        Other = "other",
    }
);

string_enum!(
    /// Head-count range of a business.
    SizeRange {
        From1To10 = "1-10",
        From11To50 = "11-50",
        From51To200 = "51-200",
        From201To500 = "201-500",
        From501To1000 = "501-1000",
        From1001To5000 = "1001-5000",
        From5001To10000 = "5001-10000",
        Over10000 = "10001+",
    }
);

string_enum!(
    /// Social networks a business profile can link to.
    SocialPlatform {
        LinkedIn = "linkedin",
        Facebook = "facebook",
        X = "x",
        Instagram = "instagram",
        YouTube = "youtube",
        TikTok = "tiktok",
    }
);

/// ISO 3166-1 alpha-2 codes (officially assigned), sorted.
const ISO_3166_ALPHA2: &str = "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW";

macro_rules! value_type {
    ($(#[$meta:meta])* $name:ident, $example:literal) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, sqlx::Type, ToSchema)]
        #[serde(transparent)]
        #[sqlx(transparent)]
        #[schema(value_type = String, example = $example)]
        pub struct $name(String);

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
    /// An ISO 3166-1 alpha-2 country code, upper case.
    CountryCode, "US"
);
value_type!(
    /// An e-mail address (syntax checked, domain lower-cased).
    Email, "ada@example.com"
);
value_type!(
    /// An absolute http(s) URL.
    WebUrl, "https://example.com"
);
value_type!(
    /// A phone number in E.164 form (`+` and 8 to 15 digits).
    Phone, "+14155550100"
);
value_type!(
    /// An ISO 4217 currency code, upper case.
    CurrencyCode, "EUR"
);
value_type!(
    /// A BCP 47 language tag of the form `ll`, `ll-RR` or `ll-Ssss-RR`.
    Locale, "en-US"
);

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
    fn there_are_11_sectors_25_groups_9_classifications_8_sizes_6_platforms() {
        assert_eq!(IndustrySector::ALL.len(), 11);
        assert_eq!(IndustryGroup::ALL.len(), 25);
        assert_eq!(BusinessClassification::ALL.len(), 9);
        assert_eq!(SizeRange::ALL.len(), 8);
        assert_eq!(SocialPlatform::ALL.len(), 6);
        for sector in IndustrySector::ALL {
            assert!(
                IndustryGroup::ALL.iter().any(|g| g.sector() == *sector),
                "{sector}"
            );
        }
    }

    #[test]
    fn groups_belong_to_their_sector() {
        assert_eq!(IndustryGroup::Banks.sector(), IndustrySector::Financials);
        assert_eq!(
            IndustryGroup::SoftwareServices.sector(),
            IndustrySector::InformationTechnology
        );
        assert_ne!(
            IndustryGroup::Insurance.sector(),
            IndustrySector::HealthCare
        );
    }

    #[test]
    fn enums_use_their_wire_names() {
        assert_eq!(
            serde_json::to_string(&SizeRange::Over10000).unwrap(),
            "\"10001+\""
        );
        assert_eq!(
            serde_json::from_str::<BusinessClassification>("\"c_corp\"").unwrap(),
            BusinessClassification::CCorp
        );
        assert!(serde_json::from_str::<CustomerType>("\"robot\"").is_err());
    }

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
}
