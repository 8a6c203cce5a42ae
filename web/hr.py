from flask import Blueprint

bp = Blueprint("hr", __name__)
