#!/bin/sh
# Carried in the bundle as a file; an operator runs it after the upgrade.
echo "post-install checks for $1"
