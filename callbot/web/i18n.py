"""The console's words in French and English (each user chooses; the login page follows the browser)."""

from __future__ import annotations

LANGUAGES = ("fr", "en")

_WORDS: dict[str, tuple[str, str]] = {
    # navigation and common
    "app": ("Console callbot", "Callbot console"),
    "mailbox": ("Messagerie", "Mailbox"),
    "progress": ("Ma progression", "My progress"),
    "dashboard": ("Tableau de bord", "Dashboard"),
    "calls": ("Appels", "Calls"),
    "intents": ("Intentions", "Intents"),
    "configuration": ("Configuration", "Configuration"),
    "agents": ("Conseillers", "Agents"),
    "access": ("Accès", "Access"),
    "users": ("Utilisateurs", "Users"),
    "api_tokens": ("Jetons d'API", "API tokens"),
    "role": ("Rôle", "Role"),
    "enabled": ("Actif", "Enabled"),
    "disabled": ("Désactivé", "Disabled"),
    "disable": ("Désactiver", "Disable"),
    "enable": ("Réactiver", "Enable"),
    "revoke": ("Révoquer", "Revoke"),
    "created": ("Créé", "Created"),
    "last_used": ("Dernière utilisation", "Last used"),
    "expires": ("Expire", "Expires"),
    "tok_active": ("Valide", "Active"),
    "tok_expired": ("Expiré", "Expired"),
    "tok_revoked": ("Révoqué", "Revoked"),
    "corrections": ("Corrections", "Corrections"),
    "training": ("Entraînement", "Training"),
    "test_call": ("Appel test", "Test call"),
    "versions": ("Historique", "History"),
    "logout": ("Se déconnecter", "Log out"),
    "login": ("Se connecter", "Log in"),
    "username": ("Identifiant", "Username"),
    "password": ("Mot de passe", "Password"),
    "language": ("Langue", "Language"),
    "save": ("Enregistrer", "Save"),
    "cancel": ("Annuler", "Cancel"),
    "delete": ("Supprimer", "Delete"),
    "add": ("Ajouter", "Add"),
    "move": ("Déplacer", "Move"),
    "filter": ("Filtrer", "Filter"),
    "search": ("Rechercher dans les transcriptions", "Search transcripts"),
    "all": ("Tous", "All"),
    "none": ("aucun", "none"),
    "previous": ("Précédent", "Previous"),
    "next": ("Suivant", "Next"),
    "forbidden": ("Vous n'avez pas accès à cette page.", "You do not have access to this page."),
    "not_found": ("Page introuvable.", "Page not found."),
    "keyboard": (
        "Raccourcis : j/k pour se déplacer, Entrée pour ouvrir, / pour chercher, m pour mes messages",
        "Shortcuts: j/k to move, Enter to open, / to search, m for my messages",
    ),
    # mailbox
    "status": ("Statut", "Status"),
    "reason": ("Motif", "Reason"),
    "detected_reason": ("Motif détecté", "Detected reason"),
    "overflow_reason": ("Cause du débordement", "Overflow reason"),
    "caller": ("Appelant", "Caller"),
    "received": ("Reçu", "Received"),
    "duration": ("Durée", "Duration"),
    "assignee": ("Attribué à", "Assigned to"),
    "assigned_to_me": ("Attribués à moi", "Assigned to me"),
    "transcript": ("Transcription", "Transcript"),
    "no_transcript": ("Pas encore de transcription", "No transcript yet"),
    "transcription_failed": ("La transcription a échoué : écoutez le message", "Transcription failed: listen to it"),
    "take": ("Je le prends", "Take it"),
    "release": ("Le rendre", "Release it"),
    "called_back": ("Rappelé", "Called back"),
    "close": ("Clore", "Close"),
    "start": ("Commencer", "Start"),
    "reopen": ("Rouvrir", "Reopen"),
    "note": ("Note", "Note"),
    "notes": ("Notes", "Notes"),
    "add_note": ("Ajouter la note", "Add the note"),
    "correct_reason": ("Corriger le motif", "Correct the reason"),
    "suggested_answer": ("Réponse conseillée", "Suggested answer"),
    "entities": ("Informations repérées", "Entities"),
    "copy": ("Copier", "Copy"),
    "copied": ("Copié", "Copied"),
    "history": ("Historique", "History"),
    "low_confidence": ("mots incertains soulignés", "uncertain words underlined"),
    "masked": ("Données bancaires masquées", "Payment data masked"),
    "since": ("Depuis", "Since"),
    "until": ("Jusqu'au", "Until"),
    "messages": ("messages", "messages"),
    "items_handled": ("Messages traités", "Messages handled"),
    "reasons_met": ("Motifs rencontrés", "Reasons met"),
    "corrections_accepted": ("Corrections acceptées", "Corrections accepted"),
    "corrections_proposed": ("Corrections proposées", "Corrections proposed"),
    # statuses
    "st_new": ("Nouveau", "New"),
    "st_assigned": ("Attribué", "Assigned"),
    "st_in_progress": ("En cours", "In progress"),
    "st_called_back": ("Rappelé", "Called back"),
    "st_closed": ("Clos", "Closed"),
    # ops
    "examples": ("Exemples", "Examples"),
    "new_intent": ("Nouvelle intention", "New intent"),
    "new_example": ("Nouvel exemple", "New example"),
    "edit_file": ("Modifier", "Edit"),
    "saved": ("Enregistré.", "Saved."),
    "errors": ("Erreurs", "Errors"),
    "revert": ("Revenir à cette version", "Revert to this version"),
    "accept": ("Accepter", "Accept"),
    "reject": ("Refuser", "Reject"),
    "train": ("Entraîner et évaluer", "Train and evaluate"),
    "publish": ("Publier", "Publish"),
    "published": ("Publié", "Published"),
    "rasa_servers": ("Serveurs Rasa qui suivent le modèle publié", "Rasa servers following the published model"),
    "rasa_serving": ("modèle servi", "model served"),
    "rasa_seen": ("dernière demande", "last asked"),
    "queues": ("Files", "Queues"),
    "period": ("Période", "Period"),
    "containment": ("Traités par le bot", "Contained by the bot"),
    "transfers_per_skill": ("Transferts par compétence", "Transfers per skill"),
    "overflow_by_reason": ("Messages par cause", "Overflow by reason"),
    "top_intents": ("Intentions les plus fréquentes", "Top intents"),
    "not_understood": ("Non compris", "Not understood"),
    "latency": ("Latence des tours", "Turn latency"),
    "calls_per_hour": ("Appels par heure", "Calls per hour"),
    "recent_calls": ("Appels récents", "Recent calls"),
    "turns": ("Tours", "Turns"),
    "decision": ("Décision", "Decision"),
    "call_now": ("Appeler", "Call"),
    "hang_up": ("Raccrocher", "Hang up"),
    "keypad": ("Clavier", "Keypad"),
}


def translate(key: str, language: str) -> str:
    words = _WORDS.get(key)
    if words is None:
        return key
    return words[1] if language == "en" else words[0]


def pick_language(accept_language: str | None) -> str:
    """The console language for someone not logged in yet, from the browser's preferences."""
    for part in (accept_language or "").split(","):
        code = part.split(";")[0].strip().lower()[:2]
        if code in LANGUAGES:
            return code
    return "fr"
