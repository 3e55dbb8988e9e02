"""Word lists for realistic values: accented, CJK and emoji text on purpose, so encoders and writers get exercised."""

from __future__ import annotations

import functools
import unicodedata

FIRST_NAMES = (
    "Adele", "Alex", "Allan", "Amélie", "Björn", "Chloé", "Christie", "Debra", "Diego", "Émile", "Grady", "Henrietta",
    "Isaiah", "Joni", "Jürgen", "Lee", "Lidia", "Lynne", "Megan", "Miriam", "Nestor", "Patti", "Pradeep", "Søren",
    "Zoë", "François", "Małgorzata", "Şükrü", "Nguyễn", "Ольга", "Δημήτρης", "Aoife", "Siobhán", "Leilani", "Oğuz",
    "José", "Ines", "Noël", "Rāhul", "Yuki", "Wei", "美咲", "翔太", "민준", "Ayşe", "Zoltán", "Ingrid", "Kai",
    "محمد", "فاطمة", "שרה", "Ngọc",
)
LAST_NAMES = (
    "Vance", "Wilber", "Deyoung", "Beaulieu", "Lindqvist", "Müller", "Bellew", "Berg", "Herrera", "Roux", "Morris",
    "Cannon", "Henderson", "Sherman", "Schäfer", "Gu", "Holloway", "Robbins", "Bowen", "Brown", "Wilke", "Fernandez",
    "Gupta", "Østergaard", "Lefèvre", "Kowalczyk", "Öztürk", "Trần", "Иванова", "Παπαδόπουλος", "Ní Bhriain",
    "O'Connor", "Kahale", "Yılmaz", "García", "Dubois", "Nakamura", "Zhang", "佐藤", "田中", "김", "Çelik",
    "العلي", "כהן",
)
_SPECIAL = str.maketrans({"ø": "o", "Ø": "O", "ł": "l", "Ł": "L", "đ": "d", "Đ": "D", "æ": "ae", "Æ": "AE",
                          "œ": "oe", "Œ": "OE", "ß": "ss", "ı": "i"})


@functools.lru_cache(maxsize=4096)
def fold(text: str) -> str:
    """ASCII letters and digits of a name (accents stripped; scripts without a Latin form drop out).

    Cached: the inputs are vocabulary words, folded again for every sender, contact and guest."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_SPECIAL))
    return "".join(ch for ch in decomposed if ch.isascii() and ch.isalnum())


DEPARTMENTS = (
    "Sales & Marketing", "Finance", "Engineering", "Human Resources", "Legal", "Operations", "Research & Development",
    "Customer Success", "IT", "Retail", "Production", "Exécutif",
)
JOB_TITLES = (
    "Marketing Assistant", "Retail Manager", "Sales Representative", "Software Engineer", "Senior Engineer",
    "Product Manager", "Attorney", "HR Manager", "Finance Analyst", "IT Admin", "Director", "CVP Engineering",
    "Responsable des ventes", "Ingenieurin", "Designer", "Support Specialist", "Data Scientist", "Controller",
)
# (city, state, country code, country, postal code, street, lat, lon, phone prefix, usage location, language)
CITIES = (
    ("Redmond", "WA", "US", "United States", "98052", "One Microsoft Way", 47.6740, -122.1215, "+1 425", "US", "en-US"),
    ("Seattle", "WA", "US", "United States", "98101", "1420 5th Ave", 47.6101, -122.3344, "+1 206", "US", "en-US"),
    ("New York", "NY", "US", "United States", "10001", "11 Times Sq", 40.7567, -73.9897, "+1 212", "US", "en-US"),
    ("Paris", "Île-de-France", "FR", "France", "75008", "37 Quai du Président Roosevelt", 48.8566, 2.3522,
     "+33 1", "FR", "fr-FR"),
    ("München", "Bayern", "DE", "Germany", "80807", "Walter-Gropius-Straße 5", 48.1351, 11.5820, "+49 89", "DE",
     "de-DE"),
    ("Tokyo", "Tōkyō-to", "JP", "Japan", "108-0075", "品川区港南 2-16-3", 35.6300, 139.7400, "+81 3", "JP", "ja-JP"),
    ("São Paulo", "SP", "BR", "Brazil", "04543-907", "Av. Pres. Juscelino Kubitschek, 1909", -23.5505, -46.6333,
     "+55 11", "BR", "pt-BR"),
    ("Dublin", "Leinster", "IE", "Ireland", "D18 P521", "South County Business Park", 53.3498, -6.2603, "+353 1",
     "IE", "en-IE"),
    ("Bengaluru", "Karnataka", "IN", "India", "560025", "Embassy Golf Links", 12.9716, 77.5946, "+91 80", "IN",
     "en-IN"),
    ("Sydney", "NSW", "AU", "Australia", "2113", "11 Talavera Rd", -33.8688, 151.2093, "+61 2", "AU", "en-AU"),
    ("Oslo", "Oslo", "NO", "Norway", "0250", "Dronning Mauds gate 15", 59.9139, 10.7522, "+47 22", "NO", "nb-NO"),
    ("Seoul", "Seoul", "KR", "South Korea", "03161", "종로구 종로1길 50", 37.5665, 126.9780, "+82 2", "KR", "ko-KR"),
)
OFFICES = ("18/2111", "131/1104", "20/1109", "Bâtiment A - 3.14", "Remote", "Haus 7, Raum 0.12", "東京オフィス 12F")
MAIL_SUBJECT_TOPICS = (
    "Quarterly business review", "Budget approval", "Weekly sync", "Offsite planning", "Contract renewal",
    "Réunion d'équipe", "Änderungen am Angebot", "Customer escalation", "Release notes", "Hiring loop feedback",
    "新製品の発表について", "회의 일정", "Expense report", "Security bulletin", "Travel itinerary", "Déjeuner ?",
)
SUBJECT_DECORATIONS = ("", "", "", "RE: ", "FW: ", "🚀 ", "📅 ", "✅ ", "⚠️ ", "RE: RE: ", "🎉 ", "[External] ")
MAIL_BODIES = (
    "Hi team, please find the latest numbers attached. Let me know if anything looks off.",
    "Bonjour à tous, voici le compte-rendu de la réunion de ce matin. Merci !",
    "Kurze Erinnerung: Bitte tragt eure Stunden bis Freitag ein. Danke & schönes Wochenende.",
    "お疲れ様です。来週の会議の資料を共有します。ご確認ください。",
    "Thanks for the quick turnaround 🙏 — we can close this out on Monday.",
    "Can we move our 1:1 to Thursday? Something came up on my side.",
    "Attaching the signed copy. The originals are on their way by courier.",
)
CATEGORIES = ("Red category", "Blue category", "Green category", "Yellow category", "Projet Alpha", "顧客")
EVENT_TOPICS = (
    "Standup", "1:1", "Design review", "All hands", "Customer call — Fabrikam", "Sprint planning", "Lunch & learn 🍕",
    "Board prep", "Interview: Senior Engineer", "Café avec l'équipe", "Quarterly planning", "年度計画ミーティング",
)
ROOMS = ("Conf Room Adams", "Conf Room Baker", "Salle Lumière", "Raum Zugspitze", "会議室 A", "Microsoft Teams Meeting")
COMPANIES = ("Fabrikam", "Contoso", "Northwind Traders", "Tailspin Toys", "Wingtip Toys", "Litware", "Adatum",
             "Woodgrove Bank", "Proseware", "Société Générale de Test", "東京商事")
GROUP_TOPICS = (
    "Mark 8 Project Team", "Sales and Marketing", "Retail", "Leadership", "Digital Initiative Public Relations",
    "U.S. Sales", "Finance", "Contoso Team", "Design", "Engineering", "Équipe Paris", "Vertrieb DACH", "東京チーム",
    "Help Desk", "Communications", "Product Launch 🚀", "Legal", "Operations", "Research", "IT Security",
)
CHANNEL_TOPICS = ("General", "Announcements 📣", "Design", "Planning", "Random", "Support", "Déploiement",
                  "Releases", "Q&A", "Incidents", "Partner sync", "日本チーム")
CHAT_LINES = (
    "Hello! 👋", "Can you review the deck before 3pm?", "Sure, on it.", "Merci beaucoup !", "Sounds good 👍",
    "Je suis en réunion, je te rappelle.", "The build is green again ✅", "Wer kommt mit zum Mittagessen?",
    "了解です！", "Let's take this offline.", "LGTM", "I shared the file in the channel.",
)
FILE_KINDS = (
    ("docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
    ("xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    ("pptx", "application/vnd.openxmlformats-officedocument.presentationml.presentation"),
    ("pdf", "application/pdf"),
    ("png", "image/png"),
    ("jpg", "image/jpeg"),
    ("txt", "text/plain"),
    ("csv", "text/csv"),
    ("one", "application/msonenote"),
    ("mp4", "video/mp4"),
)
FILE_TOPICS = ("Budget", "Roadmap", "Meeting notes", "Contrat", "Präsentation", "Rapport annuel", "Team photo",
               "Invoice", "議事録", "Design spec", "Onboarding", "Résumé")
FOLDER_TOPICS = ("Documents", "Projects", "Archive", "Shared", "Clients", "Photos", "Finance", "Équipe",
                 "Verträge", "資料", "Templates", "Drafts")
APP_TOPICS = ("Payroll Connector", "Expense Tracker", "HR Portal", "Data Lake Sync", "Backup Service",
              "Customer Portal", "Build Agent", "Reporting Service", "Intranet", "Kiosk App", "Ticketing",
              "Analytics API", "Application d'inventaire", "Zeiterfassung", "ワークフロー")
BROWSERS = ("Edge 120.0.0", "Chrome 121.0.0", "Firefox 122.0", "Safari 17.2", "Mobile Safari", "Rich Client 4.61.0.0")
OPERATING_SYSTEMS = ("Windows10", "Windows 11", "MacOs", "Ios 17", "Android 14", "Linux")
USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/121.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_2) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Safari/605.1",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17126; Pro)",
)
