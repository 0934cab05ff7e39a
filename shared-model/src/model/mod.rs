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

string_enum!(
    /// What a location is. An owner has at most one `hq`.
    LocationKind {
        Hq = "hq",
        Branch = "branch",
        Warehouse = "warehouse",
        Store = "store",
        Other = "other",
    }
);

string_enum!(
    /// Whose address an HQ location was made from (and is kept in step with).
    DerivedFrom { Customer = "customer", Client = "client" }
);

mod values;

pub use values::{CountryCode, CurrencyCode, Email, Locale, Phone, WebUrl};

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
}
