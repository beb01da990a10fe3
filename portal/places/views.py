"""Places pages: the community tree for secretaries, grids for grid workers, communities for
subdistrict admins; create/edit/delete for secretaries only.

A grid worker sees the grids, buildings and households of their grids (404 elsewhere); an estate
page shows them only the estate's buildings in their grids, and 404 when it has none there.
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from wtforms import SelectChoice

from portal.access import community_ids, get_scoped_or_404, grid_ids, require_grid, roles_required
from portal.core.errors import DomainError
from portal.extensions import db
from portal.htmx import is_htmx, render
from portal.places import services
from portal.places.forms import (
    BuildingForm,
    EntranceForm,
    EstateForm,
    GridForm,
    HouseholdForm,
    optional_id,
)
from portal.places.models import Building, Community, Entrance, Estate, Grid, Household

bp = Blueprint("places", __name__, url_prefix="/places")

STAFF = ("secretary", "grid_worker", "subdistrict_admin")
EDITORS = ("secretary",)


# ---------------------------------------------------------------------------------------------
# Helpers


def _page(name: str = "page") -> int:
    return request.args.get(name, 1, type=int)


def _fragment(**fragments: str) -> str | None:
    """The fragment a pager's htmx request asked for with ``?list=``."""
    return fragments.get(request.args.get("list", ""))


def _can_edit() -> bool:
    return current_user.role in EDITORS


def _community_or_404(community_id: int) -> Community:
    # Community is the scope itself (no community_id column), so get_scoped_or_404 does not fit.
    community = db.session.get(Community, community_id)
    if community is None or community.id not in community_ids():
        abort(404)
    return community


def _grid_or_404(grid_id: int) -> Grid:
    grid = get_scoped_or_404(Grid, grid_id)
    require_grid(grid.id)
    return grid


def _building_or_404(building_id: int) -> Building:
    building = get_scoped_or_404(Building, building_id)
    require_grid(building.grid_id)
    return building


def _household_or_404(household_id: int) -> Household:
    household = get_scoped_or_404(Household, household_id)
    require_grid(household.building.grid_id)
    return household


def _flash_errors(error: DomainError) -> None:
    for message in error.errors.values():
        flash(message, "error")


def _see_other(endpoint: str, **values) -> object:
    return redirect(url_for(endpoint, **values), code=303)


# ---------------------------------------------------------------------------------------------
# Overviews


@bp.get("/")
@roles_required(*STAFF)
def index():
    if current_user.role == "subdistrict_admin":
        communities = services.communities_page(community_ids(), _page())
        return render(
            "places/communities.html",
            "places/_communities.html",
            communities=communities,
            counts=services.community_counts([c.id for c in communities.items]),
            list_endpoint="places.index",
            list_args={},
        )
    if current_user.role == "grid_worker":
        return _my_grids()
    return _community_tree(db.session.get(Community, current_user.community_id), "places.index", {})


@bp.get("/communities/<int:community_id>")
@roles_required("secretary", "subdistrict_admin")
def community(community_id: int):
    community = _community_or_404(community_id)
    return _community_tree(community, "places.community", {"community_id": community.id})


def _community_tree(community: Community, endpoint: str, args: dict):
    gpage, epage = _page("gpage"), _page("epage")
    grids = services.grids_page(Grid.community_id == community.id, gpage)
    estates = services.estates_page(community.id, epage)
    return render(
        "places/community.html",
        _fragment(grids="places/_grids.html", estates="places/_estates.html"),
        community=community,
        grids=grids,
        grid_buildings=services.buildings_per_grid(grids.items),
        estates=estates,
        estate_buildings=services.buildings_per_estate(estates.items),
        list_endpoint=endpoint,
        list_args={**args, "gpage": gpage, "epage": epage},
        can_edit=_can_edit(),
    )


def _my_grids():
    ids = grid_ids() or []
    gpage, bpage = _page("gpage"), _page("bpage")
    grids = services.grids_page(Grid.id.in_(ids), gpage)
    buildings = services.buildings_page(Building.grid_id.in_(ids), bpage)
    return render(
        "places/my_grids.html",
        _fragment(grids="places/_grids.html", buildings="places/_buildings.html"),
        grids=grids,
        grid_buildings=services.buildings_per_grid(grids.items),
        buildings=buildings,
        building_households=services.households_per_building(buildings.items),
        buildings_param="bpage",
        list_endpoint="places.index",
        list_args={"gpage": gpage, "bpage": bpage},
        can_edit=False,
    )


# ---------------------------------------------------------------------------------------------
# Grids


def _grid_form(community_id: int, **kwargs) -> GridForm:
    form = GridForm(**kwargs)
    form.worker_ids.choices = [
        SelectChoice(u.id, f"{u.display_name} ({u.username})")
        for u in services.grid_worker_candidates(community_id)
    ]
    return form


@bp.route("/grids/new", methods=["GET", "POST"])
@roles_required(*EDITORS)
def grid_new():
    form = _grid_form(current_user.community_id)
    if form.validate_on_submit():
        try:
            grid = services.create_grid(
                current_user.community_id,
                name=form.name.data,
                description=form.description.data,
                worker_ids=form.worker_ids.data or [],
            )
        except DomainError as error:
            error.apply_to(form)
        else:
            db.session.commit()
            flash(_("Grid %(name)s created.", name=grid.name), "success")
            return _see_other("places.grid", grid_id=grid.id)
    return render("places/grid_form.html", form=form, grid=None)


@bp.get("/grids/<int:grid_id>")
@roles_required(*STAFF)
def grid(grid_id: int):
    grid = _grid_or_404(grid_id)
    buildings = services.buildings_page(Building.grid_id == grid.id, _page())
    return render(
        "places/grid.html",
        "places/_buildings.html",
        grid=grid,
        buildings=buildings,
        building_households=services.households_per_building(buildings.items),
        buildings_param="page",
        list_endpoint="places.grid",
        list_args={"grid_id": grid.id},
        can_edit=_can_edit(),
    )


@bp.route("/grids/<int:grid_id>/edit", methods=["GET", "POST"])
@roles_required(*EDITORS)
def grid_edit(grid_id: int):
    grid = get_scoped_or_404(Grid, grid_id)
    form = _grid_form(
        grid.community_id, obj=grid, data={"worker_ids": [u.id for u in grid.workers]}
    )
    if form.validate_on_submit():
        try:
            services.update_grid(
                grid,
                name=form.name.data,
                description=form.description.data,
                worker_ids=form.worker_ids.data or [],
            )
        except DomainError as error:
            error.apply_to(form)
        else:
            db.session.commit()
            flash(_("Grid saved."), "success")
            return _see_other("places.grid", grid_id=grid.id)
    return render("places/grid_form.html", form=form, grid=grid)


@bp.post("/grids/<int:grid_id>/delete")
@roles_required(*EDITORS)
def grid_delete(grid_id: int):
    grid = get_scoped_or_404(Grid, grid_id)
    name = grid.name
    try:
        services.delete_grid(grid)
    except DomainError as error:
        _flash_errors(error)
        return _see_other("places.grid", grid_id=grid.id)
    db.session.commit()
    flash(_("Grid %(name)s deleted.", name=name), "success")
    return _see_other("places.index")


# ---------------------------------------------------------------------------------------------
# Estates


@bp.route("/estates/new", methods=["GET", "POST"])
@roles_required(*EDITORS)
def estate_new():
    form = EstateForm()
    if form.validate_on_submit():
        try:
            estate = services.create_estate(
                current_user.community_id,
                name=form.name.data,
                kind=form.kind.data,
                address=form.address.data,
            )
        except DomainError as error:
            error.apply_to(form)
        else:
            db.session.commit()
            flash(_("Estate %(name)s created.", name=estate.name), "success")
            return _see_other("places.estate", estate_id=estate.id)
    return render("places/estate_form.html", form=form, estate=None)


@bp.get("/estates/<int:estate_id>")
@roles_required(*STAFF)
def estate(estate_id: int):
    estate = get_scoped_or_404(Estate, estate_id)
    condition = Building.estate_id == estate.id
    allowed = grid_ids()
    if allowed is not None:
        condition = condition & Building.grid_id.in_(allowed)
    buildings = services.buildings_page(condition, _page())
    if allowed is not None and buildings.total == 0:
        abort(404)
    return render(
        "places/estate.html",
        "places/_buildings.html",
        estate=estate,
        buildings=buildings,
        building_households=services.households_per_building(buildings.items),
        buildings_param="page",
        list_endpoint="places.estate",
        list_args={"estate_id": estate.id},
        can_edit=_can_edit(),
    )


@bp.route("/estates/<int:estate_id>/edit", methods=["GET", "POST"])
@roles_required(*EDITORS)
def estate_edit(estate_id: int):
    estate = get_scoped_or_404(Estate, estate_id)
    form = EstateForm(obj=estate)
    if form.validate_on_submit():
        try:
            services.update_estate(
                estate, name=form.name.data, kind=form.kind.data, address=form.address.data
            )
        except DomainError as error:
            error.apply_to(form)
        else:
            db.session.commit()
            flash(_("Estate saved."), "success")
            return _see_other("places.estate", estate_id=estate.id)
    return render("places/estate_form.html", form=form, estate=estate)


@bp.post("/estates/<int:estate_id>/delete")
@roles_required(*EDITORS)
def estate_delete(estate_id: int):
    estate = get_scoped_or_404(Estate, estate_id)
    name = estate.name
    try:
        services.delete_estate(estate)
    except DomainError as error:
        _flash_errors(error)
        return _see_other("places.estate", estate_id=estate.id)
    db.session.commit()
    flash(_("Estate %(name)s deleted.", name=name), "success")
    return _see_other("places.index")


# ---------------------------------------------------------------------------------------------
# Buildings


def _building_form(community_id: int, keep_captain: int | None = None, **kwargs) -> BuildingForm:
    form = BuildingForm(**kwargs)
    form.estate_id.choices = [SelectChoice("", _("Choose an estate"))] + [
        SelectChoice(e.id, e.name) for e in services.community_estates(community_id)
    ]
    form.grid_id.choices = [SelectChoice("", _("Choose a grid"))] + [
        SelectChoice(g.id, g.name) for g in services.community_grids(community_id)
    ]
    form.captain_id.choices = [SelectChoice("", _("No building captain"))] + [
        SelectChoice(p.id, p.name) for p in services.captain_candidates(community_id, keep_captain)
    ]
    return form


def _building_fields(form: BuildingForm) -> dict:
    return {
        "estate_id": form.estate_id.data,
        "grid_id": form.grid_id.data,
        "name": form.name.data,
        "floors": form.floors.data,
        "captain_id": form.captain_id.data,
    }


@bp.route("/buildings/new", methods=["GET", "POST"])
@roles_required(*EDITORS)
def building_new():
    preset = {
        "estate_id": optional_id(request.args.get("estate_id")),
        "grid_id": optional_id(request.args.get("grid_id")),
    }
    form = _building_form(current_user.community_id, data=preset)
    if form.validate_on_submit():
        try:
            building = services.create_building(current_user.community_id, **_building_fields(form))
        except DomainError as error:
            error.apply_to(form)
        else:
            db.session.commit()
            flash(_("Building %(name)s created.", name=building.name), "success")
            return _see_other("places.building", building_id=building.id)
    return render("places/building_form.html", form=form, building=None)


def _building_page(building: Building, entrance_form: EntranceForm | None, **extra):
    households = services.households_page(building.id, _page())
    return render(
        "places/building.html",
        extra.pop("fragment", "places/_households.html"),
        building=building,
        households=households,
        household_residents=services.residents_per_household(households.items),
        entrance_form=entrance_form,
        list_endpoint="places.building",
        list_args={"building_id": building.id},
        can_edit=_can_edit(),
        **extra,
    )


@bp.get("/buildings/<int:building_id>")
@roles_required(*STAFF)
def building(building_id: int):
    building = _building_or_404(building_id)
    return _building_page(building, EntranceForm(formdata=None) if _can_edit() else None)


@bp.route("/buildings/<int:building_id>/edit", methods=["GET", "POST"])
@roles_required(*EDITORS)
def building_edit(building_id: int):
    building = get_scoped_or_404(Building, building_id)
    form = _building_form(building.community_id, building.captain_id, obj=building)
    if form.validate_on_submit():
        try:
            services.update_building(building, **_building_fields(form))
        except DomainError as error:
            error.apply_to(form)
        else:
            db.session.commit()
            flash(_("Building saved."), "success")
            return _see_other("places.building", building_id=building.id)
    return render("places/building_form.html", form=form, building=building)


@bp.post("/buildings/<int:building_id>/delete")
@roles_required(*EDITORS)
def building_delete(building_id: int):
    building = get_scoped_or_404(Building, building_id)
    name, estate_id = building.name, building.estate_id
    try:
        services.delete_building(building)
    except DomainError as error:
        _flash_errors(error)
        return _see_other("places.building", building_id=building.id)
    db.session.commit()
    flash(_("Building %(name)s deleted.", name=name), "success")
    return _see_other("places.estate", estate_id=estate_id)


# ---------------------------------------------------------------------------------------------
# Entrances


@bp.post("/buildings/<int:building_id>/entrances")
@roles_required(*EDITORS)
def entrance_create(building_id: int):
    building = get_scoped_or_404(Building, building_id)
    form = EntranceForm()
    if form.validate_on_submit():
        try:
            entrance = services.create_entrance(building, name=form.name.data)
        except DomainError as error:
            error.apply_to(form)
        else:
            db.session.commit()
            flash(_("Entrance %(name)s added.", name=entrance.name), "success")
            if not is_htmx():
                return redirect(
                    url_for("places.building", building_id=building.id, _anchor="entrances"),
                    code=303,
                )
            return _building_page(
                building,
                EntranceForm(formdata=None),
                fragment="places/_entrances.html",
                trigger="entrances-changed",
                oob_flash=True,
            )
    return _building_page(building, form, fragment="places/_entrances.html")


@bp.route("/entrances/<int:entrance_id>/edit", methods=["GET", "POST"])
@roles_required(*EDITORS)
def entrance_edit(entrance_id: int):
    entrance = get_scoped_or_404(Entrance, entrance_id)
    form = EntranceForm(obj=entrance)
    if form.validate_on_submit():
        try:
            services.rename_entrance(entrance, name=form.name.data)
        except DomainError as error:
            error.apply_to(form)
        else:
            db.session.commit()
            flash(_("Entrance saved."), "success")
            return redirect(
                url_for("places.building", building_id=entrance.building_id, _anchor="entrances"),
                code=303,
            )
    return render("places/entrance_form.html", form=form, entrance=entrance)


@bp.post("/entrances/<int:entrance_id>/delete")
@roles_required(*EDITORS)
def entrance_delete(entrance_id: int):
    entrance = get_scoped_or_404(Entrance, entrance_id)
    name, building_id = entrance.name, entrance.building_id
    try:
        services.delete_entrance(entrance)
    except DomainError as error:
        _flash_errors(error)
    else:
        db.session.commit()
        flash(_("Entrance %(name)s deleted.", name=name), "success")
    return redirect(
        url_for("places.building", building_id=building_id, _anchor="entrances"), code=303
    )


# ---------------------------------------------------------------------------------------------
# Households


def _household_form(building: Building, **kwargs) -> HouseholdForm:
    form = HouseholdForm(**kwargs)
    form.entrance_id.choices = [SelectChoice("", _("No entrance"))] + [
        SelectChoice(e.id, e.name) for e in building.entrances
    ]
    return form


@bp.route("/buildings/<int:building_id>/households/new", methods=["GET", "POST"])
@roles_required(*EDITORS)
def household_new(building_id: int):
    building = get_scoped_or_404(Building, building_id)
    form = _household_form(building)
    if form.validate_on_submit():
        try:
            household = services.create_household(
                building,
                room=form.room.data,
                entrance_id=form.entrance_id.data,
                notes=form.notes.data,
            )
        except DomainError as error:
            error.apply_to(form)
        else:
            db.session.commit()
            flash(_("Household %(room)s created.", room=household.room), "success")
            return _see_other("places.household", household_id=household.id)
    return render("places/household_form.html", form=form, building=building, household=None)


@bp.get("/households/<int:household_id>")
@roles_required(*STAFF)
def household(household_id: int):
    household = _household_or_404(household_id)
    from portal.care.services import care_of_household

    return render(
        "places/household.html",
        household=household,
        care=care_of_household(household.id),
        can_edit=_can_edit(),
        can_register=current_user.role in ("secretary", "grid_worker"),
    )


@bp.route("/households/<int:household_id>/edit", methods=["GET", "POST"])
@roles_required(*EDITORS)
def household_edit(household_id: int):
    household = get_scoped_or_404(Household, household_id)
    building = household.building
    form = _household_form(building, obj=household)
    if form.validate_on_submit():
        try:
            services.update_household(
                household,
                room=form.room.data,
                entrance_id=form.entrance_id.data,
                notes=form.notes.data,
            )
        except DomainError as error:
            error.apply_to(form)
        else:
            db.session.commit()
            flash(_("Household saved."), "success")
            return _see_other("places.household", household_id=household.id)
    return render("places/household_form.html", form=form, building=building, household=household)


@bp.post("/households/<int:household_id>/delete")
@roles_required(*EDITORS)
def household_delete(household_id: int):
    household = get_scoped_or_404(Household, household_id)
    room, building_id = household.room, household.building_id
    try:
        services.delete_household(household)
    except DomainError as error:
        _flash_errors(error)
        return _see_other("places.household", household_id=household.id)
    db.session.commit()
    flash(_("Household %(room)s deleted.", room=room), "success")
    return _see_other("places.building", building_id=building_id)
