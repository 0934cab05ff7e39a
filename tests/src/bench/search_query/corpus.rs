//! search-query's corpus and questions: company and person names from fixed word lists (with
//! accented ones), cities and e-mail addresses, picked by a hash of each document's number so
//! every run builds the same index; and the query mix over them.

use shared_model::ids::CustomerId;

const ADJECTIVES: &[&str] = &[
    "Acme",
    "Global",
    "United",
    "Northern",
    "Pacific",
    "Atlantic",
    "Summit",
    "Pioneer",
    "Royal",
    "Golden",
    "Silver",
    "Blue",
    "Green",
    "Rapid",
    "Bright",
    "Prime",
    "Central",
    "Coastal",
    "Eastern",
    "Western",
    "Modern",
    "Classic",
    "Urban",
    "Alpine",
    "Crystal",
    "Liberty",
    "Evergreen",
    "Sterling",
    "Horizon",
    "Keystone",
    "Meridian",
    "Nordic",
    "Orion",
    "Phoenix",
    "Quantum",
    "Redwood",
    "Sapphire",
    "Titan",
    "Vertex",
    "Zenith",
];
const NOUNS: &[&str] = &[
    "Logistics",
    "Foods",
    "Motors",
    "Textiles",
    "Pharma",
    "Robotics",
    "Energy",
    "Brewing",
    "Consulting",
    "Dynamics",
    "Systems",
    "Analytics",
    "Bakery",
    "Furniture",
    "Hardware",
    "Outfitters",
    "Printing",
    "Software",
    "Telecom",
    "Ventures",
    "Apparel",
    "Builders",
    "Chemicals",
    "Dental",
    "Electric",
    "Freight",
    "Gardens",
    "Holdings",
    "Imports",
    "Jewelers",
    "Kitchens",
    "Labs",
    "Marine",
    "Networks",
    "Optics",
    "Plastics",
    "Quarries",
    "Realty",
    "Shipping",
    "Tooling",
    "Upholstery",
    "Vineyards",
    "Welding",
    "Yachts",
    "Aviation",
    "Biotech",
    "Cinemas",
    "Distillery",
    "Engineering",
    "Fisheries",
    "Globex",
    "Harvest",
    "Industries",
    "Juices",
    "Kennels",
    "Lumber",
    "Mining",
    "Nurseries",
    "Orchards",
    "Pottery",
];
const SUFFIXES: &[&str] = &["Inc", "LLC", "GmbH", "Ltd", "SARL", "AG", "Co", "Group"];
const FIRST: &[&str] = &[
    "Maria", "John", "Anna", "James", "Sofia", "Lucas", "Emma", "Noah", "Olivia", "Liam", "Mia",
    "Ethan", "Chloe", "Mateo", "Zoe", "Hugo", "Léa", "José", "Chen", "Aiko", "Priya", "Omar",
    "Fatima", "Ivan", "Olga", "Lars", "Ingrid", "Pierre", "Amélie", "Giulia", "Marco", "Sven",
    "Hanna", "Tomás", "Lucía", "Diego", "Kofi", "Amara", "Yuki", "Ravi", "Sara", "Jonas", "Elena",
    "Felix", "Clara", "Oscar", "Alice", "Henry", "Grace", "Leo", "Nina", "Paul", "Rosa", "Victor",
    "Wanda", "Xavier", "Yara", "Zane", "Bruno", "Carla",
];
const LAST: &[&str] = &[
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Perez",
    "Thompson",
    "White",
    "Harris",
    "Sanchez",
    "Clark",
    "Ramirez",
    "Lewis",
    "Robinson",
    "Walker",
    "Young",
    "Allen",
    "King",
    "Wright",
    "Scott",
    "Torres",
    "Nguyen",
    "Hill",
    "Flores",
    "Green",
    "Adams",
    "Nelson",
    "Baker",
    "Hall",
    "Rivera",
    "Campbell",
    "Mitchell",
    "Carter",
    "Roberts",
    "Müller",
    "Schmidt",
    "Schneider",
    "Fischer",
    "Weber",
    "Meyer",
    "Wagner",
    "Becker",
    "Schulz",
    "Hoffmann",
    "Dubois",
    "Durand",
    "Lefèvre",
    "Moreau",
    "Laurent",
    "Rossi",
    "Russo",
    "Ferrari",
    "Esposito",
    "Bianchi",
    "Romano",
    "Colombo",
    "Ricci",
    "Marino",
    "Greco",
    "Kowalski",
    "Nowak",
    "Wiśniewski",
    "Novák",
    "Svoboda",
    "Andersson",
    "Johansson",
    "Karlsson",
    "Nilsson",
    "Eriksson",
    "Larsen",
    "Hansen",
    "Nielsen",
    "Jensen",
    "Pedersen",
    "Tanaka",
    "Suzuki",
    "Takahashi",
    "Watanabe",
    "Yamamoto",
    "Kim",
    "Park",
    "Choi",
    "Hendricks",
    "Okafor",
];
const CITIES: &[&str] = &[
    "Springfield",
    "Riverside",
    "Franklin",
    "Greenville",
    "Bristol",
    "Clinton",
    "Fairview",
    "Salem",
    "Madison",
    "Georgetown",
    "Arlington",
    "Ashland",
    "Dover",
    "Oxford",
    "Jackson",
    "Burlington",
    "Manchester",
    "Milton",
    "Newport",
    "Auburn",
    "Dayton",
    "Lexington",
    "Milford",
    "Winchester",
    "Hudson",
    "Kingston",
    "Mount Vernon",
    "Oakland",
    "Lyon",
    "Zürich",
];

/// Queries in the mix (each a tenant and a text), recorded once for the pgbench side.
pub const QUERIES: usize = 120;

/// A small deterministic generator (SplitMix64): the same corpus questions every run.
struct Mix(u64);

impl Mix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn pick<'a>(&mut self, list: &[&'a str]) -> &'a str {
        list[(self.next() % list.len() as u64) as usize]
    }
}

/// An SQL array of `words`.
fn array(words: &[&str]) -> String {
    let quoted: Vec<String> = words
        .iter()
        .map(|w| format!("'{}'", w.replace('\'', "''")))
        .collect();
    format!("ARRAY[{}]", quoted.join(","))
}

/// The element of `list` (an SQL array of `n` words) that hash `k` of document `i` picks.
fn chosen(list: &str, n: usize, k: u32) -> String {
    format!("({list})[1 + (abs(hashint8(i * 8 + {k})) % {n})]")
}

/// Tenant `t`'s id (1-based), as the corpus SQL makes it.
pub fn tenant_id(t: usize) -> CustomerId {
    format!("00000000-0000-7000-9000-{t:012x}").parse().unwrap()
}

/// The corpus statement for documents `from..=to` of `per` a tenant.
pub fn corpus_sql(from: usize, to: usize, per: usize) -> String {
    let clients = (per * 6 / 10).max(1);
    let company = format!(
        "{} || ' ' || {} || ' ' || {}",
        chosen(&array(ADJECTIVES), ADJECTIVES.len(), 1),
        chosen(&array(NOUNS), NOUNS.len(), 2),
        chosen(&array(SUFFIXES), SUFFIXES.len(), 3)
    );
    let first = chosen(&array(FIRST), FIRST.len(), 4);
    let last = chosen(&array(LAST), LAST.len(), 5);
    let city = chosen(&array(CITIES), CITIES.len(), 6);
    let id = |n: &str| format!("('00000000-0000-7000-8000-' || lpad(to_hex({n}), 12, '0'))::uuid");
    let tenant = "('00000000-0000-7000-9000-' || lpad(to_hex(t), 12, '0'))::uuid";
    // A contact's client: one of its tenant's clients, by the contact's number.
    let client_of = format!("(t - 1) * {per} + 2 + (j % {clients})");
    format!(
        "INSERT INTO documents (kind, id, customer_id, client_id, version, name, email, city,
             type, status, created_at, updated_at)
         SELECT CASE WHEN j = 0 THEN 'customer' WHEN j <= {clients} THEN 'client' ELSE 'contact' END,
                CASE WHEN j = 0 THEN {tenant} ELSE {id_i} END,
                {tenant},
                CASE WHEN j = 0 THEN NULL WHEN j <= {clients} THEN {id_i} ELSE {id_client} END,
                1,
                CASE WHEN j <= {clients} THEN {company} ELSE {first} || ' ' || {last} END,
                CASE WHEN j > {clients} THEN lower(unaccent({first} || '.' || {last})) || '@example.com' END,
                {city},
                CASE WHEN j = 0 THEN 'business' WHEN j <= {clients} THEN 'business' ELSE 'billing' END,
                'active', now() - make_interval(secs => i), now() - make_interval(secs => i)
           FROM (SELECT i, (i - 1) / {per} + 1 AS t, (i - 1) % {per} AS j
                   FROM generate_series({from}::bigint, {to}::bigint) AS i) g",
        id_i = id("i"),
        id_client = id(&client_of),
    )
}

/// A misspelling of `w`: two neighbouring letters swapped, or a letter replaced.
fn misspell(w: &str, mix: &mut Mix) -> String {
    let mut chars: Vec<char> = w.to_lowercase().chars().collect();
    let at = 1 + (mix.next() as usize) % (chars.len() - 2);
    if mix.next().is_multiple_of(2) {
        chars.swap(at, at + 1);
    } else {
        chars[at] = if chars[at] == 'e' { 'a' } else { 'e' };
    }
    chars.into_iter().collect()
}

/// A prefix of `w` as typed so far (3 to 5 letters).
fn prefix(w: &str, mix: &mut Mix) -> String {
    let n = 3 + (mix.next() as usize) % 3;
    w.to_lowercase().chars().take(n).collect()
}

/// The query mix: (tenant number, text).
pub fn queries(tenants: usize) -> Vec<(usize, String)> {
    let mut mix = Mix(0x5EA2C4);
    let long: Vec<&str> = LAST
        .iter()
        .chain(NOUNS)
        .copied()
        .filter(|w| w.chars().count() >= 5)
        .collect();
    (0..QUERIES)
        .map(|n| {
            let t = 1 + (mix.next() as usize) % tenants;
            let text = match n % 4 {
                0 => mix.pick(&long).to_lowercase(),
                1 => prefix(mix.pick(&long), &mut mix),
                2 => misspell(mix.pick(&long), &mut mix),
                _ => format!(
                    "{} {}",
                    mix.pick(FIRST).to_lowercase(),
                    prefix(mix.pick(LAST), &mut mix)
                ),
            };
            (t, text)
        })
        .collect()
}
