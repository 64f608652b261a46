#!/bin/sh
# The image's entrypoint: an empty bot folder volume (CALLBOT_BOT_DIR, /bot) is first seeded with the example bot
# that the image ships (CALLBOT_BOT_SEED, /app/bots/fr), so that console edits live in the volume from the start;
# a folder that already holds a bot, or anything else, is never touched. Then the command runs in its place.
set -eu

bot_dir="${CALLBOT_BOT_DIR:-/bot}"
seed="${CALLBOT_BOT_SEED:-/app/bots/fr}"
lock="$bot_dir/.seeding"

seed_bot_folder() {
    # several instances may share the volume and start together: mkdir is atomic, the first one copies,
    # the others wait for bot.yml, which is copied last
    if mkdir "$lock" 2>/dev/null; then
        for entry in "$seed"/* "$seed"/.[!.]*; do
            if [ -e "$entry" ] && [ "${entry##*/}" != bot.yml ]; then
                cp -R "$entry" "$bot_dir/"
            fi
        done
        cp "$seed/bot.yml" "$bot_dir/bot.yml"
        rmdir "$lock"
        echo "callbot-entrypoint: seeded the bot folder $bot_dir from $seed" >&2
        return
    fi
    waited=0
    while [ ! -e "$bot_dir/bot.yml" ]; do
        if [ "$waited" -ge 60 ]; then
            echo "callbot-entrypoint: $lock exists but $bot_dir/bot.yml never came: another instance died while" \
                "seeding; remove $lock and start again" >&2
            exit 1
        fi
        sleep 1
        waited=$((waited + 1))
    done
}

if [ -n "$seed" ] && [ -e "$seed/bot.yml" ] && [ ! -e "$bot_dir/bot.yml" ]; then
    mkdir -p "$bot_dir"
    if [ -z "$(ls -A "$bot_dir")" ] || [ -d "$lock" ]; then
        seed_bot_folder
    else
        echo "callbot-entrypoint: $bot_dir has files but no bot.yml: left as it is (not seeded from $seed)" >&2
    fi
fi

exec "$@"
